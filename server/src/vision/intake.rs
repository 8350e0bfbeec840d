//! Synchronous checks run when a request brings an image, before anything is
//! stored: what the bytes are, whether they fit, and whether a URL may be
//! fetched at all.
//!
//! URL hosts given as literal IP addresses are checked here, because HTTP
//! clients connect to literal IPs without consulting any resolver. Host
//! *names* are deliberately not resolved here: the fetcher's resolver checks
//! every address a name resolves to at connect time, which also defeats DNS
//! rebinding (a name that is public when accepted and private when fetched).

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
/// ranges (see [`is_forbidden_ip`]) unless `allow_private`. Malformed →
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

/// Whether brain refuses to fetch from this address: loopback, private,
/// link-local (incl. cloud metadata 169.254.169.254), CGNAT, multicast,
/// unspecified, broadcast, reserved, documentation and benchmarking ranges,
/// IPv6 unique-local, site-local, NAT64-local and Teredo, and the IPv4-mapped,
/// IPv4-compatible, NAT64 and 6to4 forms of forbidden IPv4 addresses.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                   // 0.0.0.0/8 "this network", unspecified
        || a == 10                           // 10/8 private
        || (a == 100 && (64..128).contains(&b)) // 100.64/10 CGNAT
        || a == 127                          // loopback
        || (a == 169 && b == 254)            // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b)) // 172.16/12 private
        || (a == 192 && b == 0 && c == 0)    // 192.0.0/24 IETF protocol assignments
        || (a == 192 && b == 0 && c == 2)    // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)  // 6to4 relay anycast (deprecated)
        || (a == 192 && b == 168)            // 192.168/16 private
        || (a == 198 && (b == 18 || b == 19)) // 198.18/15 benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)  // TEST-NET-3
        || a >= 224 // 224/4 multicast, 240/4 reserved, 255.255.255.255 broadcast
}

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        // ::ffff:a.b.c.d reaches a.b.c.d.
        return is_forbidden_v4(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        // ::/96: unspecified, loopback and the deprecated IPv4-compatible form; never a public host.
        return true;
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        // 64:ff9b::/96 NAT64: reaches the embedded IPv4 address.
        return is_forbidden_v4(embedded_v4(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        // 6to4: the IPv4 address is in bits 16..48.
        return is_forbidden_v4(embedded_v4(s[1], s[2]));
    }
    (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1)   // 64:ff9b:1::/48 local-use NAT64
        || (s[0] == 0x100 && s[1..4] == [0, 0, 0])  // 100::/64 discard-only
        || (s[0] == 0x2001 && s[1] == 0)            // 2001::/32 Teredo
        || (s[0] == 0x2001 && s[1] == 0xdb8)        // 2001:db8::/32 documentation
        || (s[0] & 0xfe00) == 0xfc00                // fc00::/7 unique local
        || (s[0] & 0xffc0) == 0xfe80                // fe80::/10 link-local
        || (s[0] & 0xffc0) == 0xfec0                // fec0::/10 site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // ff00::/8 multicast
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

/// A short name for the range a forbidden address is in, for messages.
pub fn ip_class(ip: IpAddr) -> &'static str {
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    if let Some(v4) = v4 {
        let [a, b, ..] = v4.octets();
        return match (a, b) {
            (127, _) => "loopback",
            (10, _) | (192, 168) => "private",
            (172, 16..=31) => "private",
            (169, 254) => "link-local / cloud metadata",
            (100, 64..=127) => "carrier-grade NAT",
            (0, _) => "unspecified",
            (224..=239, _) => "multicast",
            (255, 255) if v4.is_broadcast() => "broadcast",
            _ if is_forbidden_v4(v4) => "reserved",
            _ => "public",
        };
    }
    let IpAddr::V6(v6) = ip else { return "public" };
    let s0 = v6.segments()[0];
    if v6.is_loopback() {
        "loopback"
    } else if v6.is_unspecified() {
        "unspecified"
    } else if (s0 & 0xfe00) == 0xfc00 {
        "unique local (private)"
    } else if (s0 & 0xffc0) == 0xfe80 {
        "link-local"
    } else if (s0 & 0xff00) == 0xff00 {
        "multicast"
    } else if is_forbidden_v6(v6) {
        "reserved"
    } else {
        "public"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        is_forbidden_ip(s.parse().unwrap())
    }

    #[test]
    fn forbidden_ranges() {
        for ip in [
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
        ] {
            assert!(forbidden(ip), "{ip} should be forbidden");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.0.1",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.0.1",
            "93.184.216.34",
            "::ffff:8.8.8.8",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "64:ff9b::808:808",
            "2002:808:808::",
        ] {
            assert!(!forbidden(ip), "{ip} should be allowed");
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
