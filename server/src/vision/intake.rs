//! Synchronous checks run when a request brings an image, before anything is
//! stored: what the bytes are, whether they fit, and whether a URL may be
//! fetched at all.
//!
//! URL hosts given as literal IP addresses are checked here, because HTTP
//! clients connect to literal IPs without consulting any resolver. Host
//! *names* are deliberately not resolved here: the fetcher's resolver checks
//! every address a name resolves to at connect time, which also defeats DNS
//! rebinding (a name that is public when accepted and private when fetched).
//! Both use the one address policy of [`forbidden_range`]: public unicast
//! only, every IANA special-purpose range refused, and IPv6 forms that embed
//! an IPv4 address decided by that address where it is what a connection
//! reaches.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use crate::error::{Error, Reason};

/// Longest image URL accepted, in bytes.
pub const MAX_URL_LEN: usize = 4_096;

/// An image format brain analyses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// PNG.
    Png,
    /// JPEG (JFIF, EXIF).
    Jpeg,
    /// WebP (lossy, lossless or extended).
    Webp,
    /// GIF (87a or 89a); the first frame is analysed.
    Gif,
}

impl ImageFormat {
    /// The MIME type, e.g. "image/png".
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
        }
    }

    /// Short name, e.g. "png".
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
        }
    }

    /// The format a MIME type names (parameters and case ignored), if supported.
    /// `image/jpg` and `image/pjpeg` are accepted as the JPEG aliases seen in the wild.
    pub fn from_mime(mime: &str) -> Option<ImageFormat> {
        let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match essence.as_str() {
            "image/png" => Some(ImageFormat::Png),
            "image/jpeg" | "image/jpg" | "image/pjpeg" => Some(ImageFormat::Jpeg),
            "image/webp" => Some(ImageFormat::Webp),
            "image/gif" => Some(ImageFormat::Gif),
            _ => None,
        }
    }

    pub(crate) fn to_image_crate(self) -> image::ImageFormat {
        match self {
            ImageFormat::Png => image::ImageFormat::Png,
            ImageFormat::Jpeg => image::ImageFormat::Jpeg,
            ImageFormat::Webp => image::ImageFormat::WebP,
            ImageFormat::Gif => image::ImageFormat::Gif,
        }
    }
}

/// The format of encoded image bytes, from their magic numbers; `None` for
/// anything that is not PNG, JPEG, WebP or GIF. The bytes decide, never a
/// declared MIME type or file name.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some(ImageFormat::Png)
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(ImageFormat::Jpeg)
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some(ImageFormat::Gif)
    } else if bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some(ImageFormat::Webp)
    } else {
        None
    }
}

/// A best guess at what unsupported bytes are, for error messages.
pub fn describe_unsupported(bytes: &[u8]) -> &'static str {
    if bytes.is_empty() {
        "empty data"
    } else if bytes.starts_with(b"BM") {
        "BMP"
    } else if bytes.starts_with(b"II*\0") || bytes.starts_with(b"MM\0*") {
        "TIFF"
    } else if bytes.len() >= 12 && &bytes[4..8] == b"ftyp" {
        "an ISO media file (AVIF, HEIC or video)"
    } else if bytes.starts_with(b"%PDF") {
        "PDF"
    } else if bytes.starts_with(b"\x00\x00\x01\x00") {
        "ICO"
    } else if bytes.trim_ascii_start().starts_with(b"<") {
        "markup (SVG or HTML)"
    } else {
        "unrecognised data"
    }
}

/// Size cap for inline and fetched images.
pub fn check_size(len: usize, max_bytes: usize) -> Result<(), Error> {
    if len > max_bytes {
        return Err(Error::new(Reason::ImageTooLarge, format!("the image has {len} bytes; the limit is {max_bytes}"))
            .with_limit(max_bytes));
    }
    Ok(())
}

/// Checks inline image bytes at intake: not empty, within `max_bytes`, and
/// PNG, JPEG, WebP or GIF by their magic numbers. Whether the pixels decode is
/// the analyser's business (a corrupt image becomes a FAILED job with a reason).
pub fn check_inline(bytes: &[u8], max_bytes: usize) -> Result<ImageFormat, Error> {
    check_size(bytes.len(), max_bytes)?;
    sniff(bytes).ok_or_else(|| {
        Error::new(
            Reason::ImageUnsupportedType,
            format!("the image is {}; only PNG, JPEG, WebP and GIF are accepted", describe_unsupported(bytes)),
        )
    })
}

/// Checks an image URL at intake: http or https, a host, no user info, at
/// most [`MAX_URL_LEN`] bytes, and a literal IP host outside the forbidden
/// ranges (see [`forbidden_range`]) unless `allow_private`. Malformed →
/// `IMAGE_URL_INVALID`; forbidden address → `IMAGE_URL_FORBIDDEN`.
///
/// The URL parser normalises IPv4 written in decimal, hex or octal
/// (`http://2130706433/`, `http://0x7f000001/`) to dotted form before the check.
pub fn validate_url(url: &str, allow_private: bool) -> Result<Url, Error> {
    let url = url.trim();
    if url.is_empty() {
        return Err(Error::new(Reason::ImageUrlInvalid, "the image URL is empty"));
    }
    if url.len() > MAX_URL_LEN {
        return Err(Error::new(
            Reason::ImageUrlInvalid,
            format!("the image URL has {} bytes; the limit is {MAX_URL_LEN}", url.len()),
        )
        .with_limit(MAX_URL_LEN));
    }
    let parsed =
        Url::parse(url).map_err(|e| Error::new(Reason::ImageUrlInvalid, format!("the image URL is malformed: {e}")))?;
    check_parsed_url(&parsed, allow_private)?;
    Ok(parsed)
}

/// [`validate_url`] for an already parsed URL (e.g. a redirect target).
pub fn check_parsed_url(url: &Url, allow_private: bool) -> Result<(), Error> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::new(
            Reason::ImageUrlInvalid,
            format!("the image URL scheme '{}' is not http or https", url.scheme()),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::new(Reason::ImageUrlInvalid, "the image URL must not contain user info (credentials)"));
    }
    let ip = match url.host() {
        None => return Err(Error::new(Reason::ImageUrlInvalid, "the image URL has no host")),
        Some(Host::Domain("")) => {
            return Err(Error::new(Reason::ImageUrlInvalid, "the image URL has no host"));
        }
        Some(Host::Domain(_)) => return Ok(()),
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
    };
    if !allow_private && is_forbidden_ip(ip) {
        return Err(forbidden_error(ip));
    }
    Ok(())
}

/// The error for a refused address.
pub fn forbidden_error(ip: IpAddr) -> Error {
    Error::new(
        Reason::ImageUrlForbidden,
        format!("the image URL points to {ip} ({}); brain only fetches from public addresses", ip_class(ip)),
    )
}

/// Whether brain refuses to fetch from this address. See [`forbidden_range`]
/// for the policy.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    forbidden_range(ip).is_some()
}

/// A short name for the range an address is in, for messages: "public" for
/// an address brain fetches from.
pub fn ip_class(ip: IpAddr) -> String {
    forbidden_range(ip).unwrap_or_else(|| "public".to_owned())
}

/// The special-purpose IPv4 ranges brain refuses: every entry of the IANA
/// IPv4 Special-Purpose Address Registry (more specific entries first, for
/// their names), plus multicast and the reserved 240/4.
const FORBIDDEN_V4: &[(Ipv4Addr, u8, &str)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" / unspecified"),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private"),
    (Ipv4Addr::new(100, 64, 0, 0), 10, "carrier-grade NAT"),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local / cloud metadata"),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (Ipv4Addr::new(192, 0, 2, 0), 24, "documentation"),
    (Ipv4Addr::new(192, 31, 196, 0), 24, "AS112 DNS sink"),
    (Ipv4Addr::new(192, 52, 193, 0), 24, "AMT relay anycast"),
    (Ipv4Addr::new(192, 88, 99, 0), 24, "6to4 relay anycast"),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private"),
    (Ipv4Addr::new(192, 175, 48, 0), 24, "AS112 DNS sink"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (Ipv4Addr::new(198, 51, 100, 0), 24, "documentation"),
    (Ipv4Addr::new(203, 0, 113, 0), 24, "documentation"),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (Ipv4Addr::new(255, 255, 255, 255), 32, "broadcast"),
    (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved"),
];

/// The IPv6 ranges brain refuses outright, more specific first. Everything
/// outside global unicast 2000::/3 is refused anyway; the entries outside it
/// are here for their names. The three forms that embed an IPv4 address a
/// connection really reaches (mapped, NAT64, 6to4) are decided by that
/// address before this table is consulted.
const FORBIDDEN_V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "unspecified"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96, "IPv4-translated"),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96, "IPv4-compatible (deprecated)"),
    (Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48, "local-use NAT64"),
    (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, "discard-only"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32, "Teredo"),
    (Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, "benchmarking"),
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, "IETF protocol assignments"),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation"),
    (Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0), 48, "AS112 DNS sink"),
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation"),
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16, "SRv6 segment identifiers"),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "unique local (private)"),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local (deprecated)"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

/// Why brain refuses to fetch from `ip` (the name of its range), or `None`
/// for a public address. The policy (also in docs/IMAGE_ANALYSIS.md):
///
/// - **IPv4**: every range of the IANA IPv4 Special-Purpose Address Registry
///   is refused, including the few marked globally reachable (AS112, AMT, the
///   192.0.0.0/24 anycast services): none of them serves images, and a list of
///   exceptions is where SSRF bugs live. Multicast 224/4 and reserved 240/4
///   (with broadcast) are refused too.
/// - **IPv6**: only global unicast 2000::/3 can be public; everything outside
///   it is refused. Inside it, the registry's special ranges are refused:
///   2001::/23 (IETF protocol assignments, including Teredo 2001::/32 and
///   benchmarking 2001:2::/48), documentation 2001:db8::/32 and 3fff::/20,
///   and AS112 2620:4f:8000::/48.
/// - **Embedded IPv4**, decided by the embedded address where that address is
///   what a connection reaches: IPv4-mapped `::ffff:a.b.c.d` (the kernel
///   connects to a.b.c.d), NAT64 `64:ff9b::a.b.c.d` (the NAT64 gateway does)
///   and 6to4 `2002:AABB:CCDD::/48` (packets go to the 6to4 router at
///   AA.BB.CC.DD). Refused whole, whatever they embed: IPv4-translated
///   `::ffff:0:a.b.c.d` and IPv4-compatible `::a.b.c.d` (internal to
///   translators or deprecated; no public host is addressed that way), local-use
///   NAT64 64:ff9b:1::/48 (it translates into the operator's own network), and
///   Teredo (its embedded addresses are a relay server and an obfuscated NAT
///   mapping, not the host reached; Teredo is deprecated).
pub fn forbidden_range(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4).map(str::to_owned),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    FORBIDDEN_V4.iter().find(|(net, prefix, _)| in_v4(ip, *net, *prefix)).map(|(_, _, name)| *name)
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<String> {
    let s = ip.segments();
    let embedded = if let Some(v4) = ip.to_ipv4_mapped() {
        Some(("IPv4-mapped", v4))
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(("NAT64", embedded_v4(s[6], s[7])))
    } else if s[0] == 0x2002 {
        Some(("6to4", embedded_v4(s[1], s[2])))
    } else {
        None
    };
    if let Some((form, v4)) = embedded {
        return forbidden_v4(v4).map(|name| format!("{form} {name}"));
    }
    if let Some((_, _, name)) = FORBIDDEN_V6.iter().find(|(net, prefix, _)| in_v6(ip, *net, *prefix)) {
        return Some((*name).to_owned());
    }
    // Only 2000::/3 is allocated for global unicast.
    (s[0] & 0xe000 != 0x2000).then(|| "not global unicast (outside 2000::/3)".to_owned())
}

fn in_v4(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first and last address of every range the policy refuses (the IANA IPv4 and IPv6
    /// special-purpose registries, multicast, reserved, and the IPv4-embedding forms), each
    /// written out here rather than derived from the tables under test.
    const REFUSED: &[(&str, &str, &str)] = &[
        // IPv4 special-purpose registry.
        ("0.0.0.0", "0.255.255.255", "this network"),
        ("10.0.0.0", "10.255.255.255", "private"),
        ("100.64.0.0", "100.127.255.255", "carrier-grade NAT"),
        ("127.0.0.0", "127.255.255.255", "loopback"),
        ("169.254.0.0", "169.254.255.255", "link-local"),
        ("172.16.0.0", "172.31.255.255", "private"),
        ("192.0.0.0", "192.0.0.255", "IETF protocol assignments"),
        ("192.0.2.0", "192.0.2.255", "documentation"),
        ("192.31.196.0", "192.31.196.255", "AS112"),
        ("192.52.193.0", "192.52.193.255", "AMT"),
        ("192.88.99.0", "192.88.99.255", "6to4 relay"),
        ("192.168.0.0", "192.168.255.255", "private"),
        ("192.175.48.0", "192.175.48.255", "AS112"),
        ("198.18.0.0", "198.19.255.255", "benchmarking"),
        ("198.51.100.0", "198.51.100.255", "documentation"),
        ("203.0.113.0", "203.0.113.255", "documentation"),
        ("224.0.0.0", "239.255.255.255", "multicast"),
        ("240.0.0.0", "255.255.255.254", "reserved"),
        ("255.255.255.255", "255.255.255.255", "broadcast"),
        // IPv6 special-purpose registry and the rest of the address space outside 2000::/3.
        ("::", "::", "unspecified"),
        ("::1", "::1", "loopback"),
        ("::2", "::ffff:ffff", "IPv4-compatible"),
        ("::ffff:0:0:0", "::ffff:0:ffff:ffff", "IPv4-translated"),
        ("64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "local-use NAT64"),
        ("100::", "100::ffff:ffff:ffff:ffff", "discard-only"),
        ("2001::", "2001::ffff:ffff:ffff:ffff:ffff:ffff", "Teredo"),
        ("2001:1::", "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "IETF protocol assignments"),
        ("2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff", "benchmarking"),
        ("2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
        ("2620:4f:8000::", "2620:4f:8000:ffff:ffff:ffff:ffff:ffff", "AS112"),
        ("3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
        ("5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "SRv6"),
        ("fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique local"),
        ("fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"),
        ("fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local"),
        ("ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"),
        ("::1:0:0:0", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "not global unicast"),
        ("4000::", "5eff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "not global unicast"),
        ("6000::", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "not global unicast"),
        // Embedded IPv4, decided by the embedded address: the forbidden IPv4 range's ends.
        ("::ffff:0.0.0.0", "::ffff:0.255.255.255", "IPv4-mapped"),
        ("::ffff:127.0.0.0", "::ffff:127.255.255.255", "IPv4-mapped loopback"),
        ("::ffff:169.254.169.254", "::ffff:169.254.169.254", "IPv4-mapped link-local"),
        ("::ffff:240.0.0.0", "::ffff:255.255.255.255", "IPv4-mapped"),
        ("64:ff9b::", "64:ff9b::0.255.255.255", "NAT64"),
        ("64:ff9b::10.0.0.0", "64:ff9b::10.255.255.255", "NAT64 private"),
        ("64:ff9b::127.0.0.1", "64:ff9b::127.0.0.1", "NAT64 loopback"),
        ("64:ff9b::192.168.0.0", "64:ff9b::192.168.255.255", "NAT64 private"),
        ("64:ff9b::224.0.0.0", "64:ff9b::255.255.255.255", "NAT64"),
        ("2002::", "2002:ff:ffff:ffff:ffff:ffff:ffff:ffff", "6to4"),
        ("2002:7f00::", "2002:7fff:ffff:ffff:ffff:ffff:ffff:ffff", "6to4 loopback"),
        ("2002:a00::", "2002:aff:ffff:ffff:ffff:ffff:ffff:ffff", "6to4 private"),
        ("2002:a9fe::", "2002:a9fe:ffff:ffff:ffff:ffff:ffff:ffff", "6to4 link-local"),
        ("2002:c0a8::", "2002:c0a8:ffff:ffff:ffff:ffff:ffff:ffff", "6to4 private"),
        ("2002:e000::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "6to4"),
        // Refused whole, whatever they embed (here: public 8.8.8.8 and a real Teredo address).
        ("::8.8.8.8", "::8.8.8.8", "IPv4-compatible"),
        ("::ffff:0:808:808", "::ffff:0:808:808", "IPv4-translated"),
        ("::ffff:0:7f00:1", "::ffff:0:7f00:1", "IPv4-translated"),
        ("64:ff9b:1::808:808", "64:ff9b:1::808:808", "local-use NAT64"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
    ];

    /// Public neighbours just outside the refused ranges, and well-known public hosts.
    const ALLOWED: &[&str] = &[
        "1.0.0.0",
        "8.8.8.8",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "191.255.255.255",
        "192.0.1.0",
        "192.0.3.0",
        "192.31.195.255",
        "192.31.197.0",
        "192.52.192.255",
        "192.52.194.0",
        "192.88.98.255",
        "192.88.100.0",
        "192.167.255.255",
        "192.169.0.0",
        "192.175.47.255",
        "192.175.49.0",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.99.255",
        "198.51.101.0",
        "203.0.112.255",
        "203.0.114.0",
        "223.255.255.255",
        "93.184.216.34",
        "2000::",
        "2001:200::",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "2001:4860:4860::8888",
        "2606:4700:4700::1111",
        "2620:4f:7fff:ffff:ffff:ffff:ffff:ffff",
        "2620:4f:8001::",
        "2a00:1450:4001:80b::200e",
        "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "3fff:1000::",
        "::ffff:8.8.8.8",
        "::ffff:1.0.0.0",
        "::ffff:223.255.255.255",
        "64:ff9b::808:808",
        "64:ff9b::100.63.255.255",
        "2002:808:808::1",
        "2002:100::",
        "2002:dfff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];

    #[test]
    fn every_special_purpose_range_is_refused_at_both_ends() {
        for (first, last, class) in REFUSED {
            for ip in [first, last] {
                let parsed: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
                let range = forbidden_range(parsed).unwrap_or_else(|| panic!("{ip} ({class}) must be refused"));
                assert!(range.contains(class), "{ip}: refused as '{range}', expected '{class}'");
                let err = validate_url(&format!("http://{}/a.png", url_host(parsed)), false).expect_err(ip);
                assert_eq!(err.reason(), Reason::ImageUrlForbidden, "{ip}: {err}");
                assert!(err.message().contains(class), "{ip}: {}", err.message());
                validate_url(&format!("http://{}/a.png", url_host(parsed)), true)
                    .unwrap_or_else(|e| panic!("{ip}: the development switch lets it through: {e}"));
            }
        }
        for ip in ALLOWED {
            let parsed: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert_eq!(forbidden_range(parsed), None, "{ip} is public");
            assert_eq!(ip_class(parsed), "public");
            validate_url(&format!("http://{}/a.png", url_host(parsed)), false)
                .unwrap_or_else(|e| panic!("{ip} must be allowed: {e}"));
        }
    }

    fn url_host(ip: IpAddr) -> String {
        match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        }
    }

    #[test]
    fn sniffs_magic_numbers() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some(ImageFormat::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(ImageFormat::Jpeg));
        assert_eq!(sniff(b"GIF89a...."), Some(ImageFormat::Gif));
        assert_eq!(sniff(b"GIF87a...."), Some(ImageFormat::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(ImageFormat::Webp));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b"BM...."), None);
        assert_eq!(sniff(b"<svg xmlns=..."), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(describe_unsupported(b"  <svg>"), "markup (SVG or HTML)");
        assert_eq!(ImageFormat::from_mime("Image/JPEG; charset=binary"), Some(ImageFormat::Jpeg));
        assert_eq!(ImageFormat::from_mime("image/svg+xml"), None);
    }

    #[test]
    fn inline_checks() {
        let png = b"\x89PNG\r\n\x1a\n0000";
        assert_eq!(check_inline(png, 100).unwrap(), ImageFormat::Png);
        let err = check_inline(png, 4).unwrap_err();
        assert_eq!(err.reason(), Reason::ImageTooLarge);
        assert_eq!(err.limit(), Some("4"));
        let err = check_inline(b"%PDF-1.7", 100).unwrap_err();
        assert_eq!(err.reason(), Reason::ImageUnsupportedType);
        assert!(err.message().contains("PDF"), "{}", err.message());
    }

    #[test]
    fn url_validation() {
        let ok = validate_url("https://cdn.example.com/a.png?x=1", false).unwrap();
        assert_eq!(ok.host_str(), Some("cdn.example.com"));
        validate_url("http://8.8.8.8/x.jpg", false).unwrap();
        validate_url("http://[2606:4700:4700::1111]/x.jpg", false).unwrap();

        for (url, reason) in [
            ("", Reason::ImageUrlInvalid),
            ("not a url", Reason::ImageUrlInvalid),
            ("ftp://example.com/a.png", Reason::ImageUrlInvalid),
            ("file:///etc/passwd", Reason::ImageUrlInvalid),
            ("data:image/png;base64,AAAA", Reason::ImageUrlInvalid),
            ("http://user:pw@example.com/a.png", Reason::ImageUrlInvalid),
            ("http://user@example.com/a.png", Reason::ImageUrlInvalid),
            ("http://127.0.0.1/x", Reason::ImageUrlForbidden),
            ("http://10.0.0.1/x", Reason::ImageUrlForbidden),
            ("http://169.254.169.254/latest/meta-data", Reason::ImageUrlForbidden),
            ("http://[::1]/x", Reason::ImageUrlForbidden),
            ("http://[::ffff:127.0.0.1]/x", Reason::ImageUrlForbidden),
            ("http://[::ffff:7f00:1]/x", Reason::ImageUrlForbidden),
            ("http://2130706433/", Reason::ImageUrlForbidden),
            ("http://0x7f000001/", Reason::ImageUrlForbidden),
            ("http://0177.0.0.1/", Reason::ImageUrlForbidden),
            ("http://127.1/", Reason::ImageUrlForbidden),
            ("http://0/", Reason::ImageUrlForbidden),
            ("http://[fe80::1]/", Reason::ImageUrlForbidden),
            ("http://100.64.1.2/", Reason::ImageUrlForbidden),
        ] {
            let err = validate_url(url, false).expect_err(url);
            assert_eq!(err.reason(), reason, "{url}: {err}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(validate_url(&long, false).unwrap_err().reason(), Reason::ImageUrlInvalid);

        // The development switch lets private addresses through, but not bad URLs.
        validate_url("http://127.0.0.1:8080/x", true).unwrap();
        validate_url("http://[::1]/x", true).unwrap();
        assert_eq!(validate_url("ftp://127.0.0.1/x", true).unwrap_err().reason(), Reason::ImageUrlInvalid);
    }
}
