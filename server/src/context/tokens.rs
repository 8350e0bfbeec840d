//! Token counting with o200k_base (GPT-4o's encoding).
//!
//! The encoder is built once per process (it takes a few hundred
//! milliseconds); [`warm_up`] builds it at startup so the first request does
//! not pay for it.

use tiktoken_rs::{CoreBPE, o200k_base_singleton};

/// Name of the encoding, as reported in token reports.
pub const ENCODING: &str = "o200k_base";

fn bpe() -> &'static CoreBPE {
    o200k_base_singleton()
}

/// Builds the encoder now rather than on first use.
pub fn warm_up() {
    let _ = bpe().encode_ordinary("warm up");
}

/// Tokens of `text`, treating special-token lookalikes in user text as ordinary text.
pub fn count(text: &str) -> u32 {
    u32::try_from(bpe().encode_ordinary(text).len()).unwrap_or(u32::MAX)
}

/// Encodes `text` into token ids.
pub fn encode(text: &str) -> Vec<u32> {
    bpe().encode_ordinary(text)
}

/// Decodes token ids into the exact bytes they stand for (a slice of tokens
/// may start or end inside a multi-byte character).
pub fn decode_bytes(tokens: &[u32]) -> Vec<u8> {
    bpe().decode_bytes(tokens).unwrap_or_default()
}

/// Decodes token ids back into text (lossy at invalid UTF-8 boundaries).
pub fn decode(tokens: &[u32]) -> String {
    match bpe().decode_bytes(tokens) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_match_known_o200k_values() {
        assert_eq!(count(""), 0);
        assert_eq!(count("hello world"), 2);
        // Special-token text from a user is ordinary text, not one special token.
        assert!(count("<|endoftext|>") > 1);
        let text = "make the intro background dark blue";
        assert_eq!(decode(&encode(text)), text);
    }
}
