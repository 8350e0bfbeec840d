//! Durations in prompts: "5 seconds", "5s", "1.5 minutes", "half a minute",
//! "1:30", "2 seconds longer", "by 3 seconds", "in half", "shorter".

use std::ops::Range;

use super::lexer::{Kind, Token, word_number};
use super::lexicon::{is, list};

/// What a duration expression asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Amount {
    /// An absolute length in seconds.
    Absolute(f64),
    /// A change in seconds (negative shortens).
    Delta(f64),
    /// A multiple of the current length.
    Factor(f64),
    /// Shorter, by an unknown amount.
    Shorter,
    /// Longer, by an unknown amount.
    Longer,
}

impl Amount {
    /// The new length of a scene that now runs `current` seconds, when known.
    pub fn resolve(self, current: Option<f64>) -> Option<f64> {
        let value = match self {
            Amount::Absolute(s) => Some(s),
            Amount::Delta(d) => current.map(|c| c + d),
            Amount::Factor(f) => current.map(|c| c * f),
            Amount::Shorter | Amount::Longer => None,
        };
        value.filter(|v| v.is_finite() && *v > 0.0)
    }

    /// Whether it carries a number (not just a direction).
    pub fn has_value(self) -> bool {
        !matches!(self, Amount::Shorter | Amount::Longer)
    }
}

/// A duration found in a prompt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct DurationExpr {
    /// First token.
    pub start: usize,
    /// One past the last token.
    pub end: usize,
    /// What it asks for.
    pub amount: Amount,
}

/// Seconds per unit, for unit words and suffixes.
fn unit_seconds(unit: &str) -> Option<f64> {
    match unit {
        "s" | "sec" | "secs" | "second" | "seconds" | "sek" => Some(1.0),
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => Some(0.001),
        "m" | "min" | "mins" | "minute" | "minutes" => Some(60.0),
        "h" | "hr" | "hrs" | "hour" | "hours" => Some(3600.0),
        _ => None,
    }
}

fn word_at(tokens: &[Token], i: usize) -> Option<&str> {
    tokens.get(i).filter(|t| t.kind == Kind::Word).map(|t| t.text.as_str())
}

/// A bare number or number word at `i` ("5", "1.5", "ten", "twenty five"):
/// its value and the index after it.
fn number_at(tokens: &[Token], i: usize) -> Option<(f64, usize)> {
    let t = tokens.get(i)?;
    if let Some(n) = t.number {
        return Some((n, i + 1));
    }
    let tens = word_number(word_at(tokens, i)?)?;
    if tens >= 20.0
        && let Some(units) = word_at(tokens, i + 1).and_then(word_number).filter(|u| *u < 10.0 && *u > 0.0)
    {
        return Some((tens + units, i + 2));
    }
    Some((tens, i + 1))
}

/// Splits "2.5s", "1m30s" or "1500ms" into seconds; None when the word is
/// not a glued number and unit.
fn glued_seconds(word: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = word;
    let mut pairs = 0;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let value: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        total += value * unit_seconds(&rest[..unit_len])?;
        rest = &rest[unit_len..];
        pairs += 1;
    }
    (pairs > 0).then_some(total)
}

/// Words after "the 80s" that show a decade, not a length.
#[rustfmt::skip]
const DECADE_FOLLOWERS: &[&str] = &[
    "look", "feel", "vibe", "vibes", "style", "aesthetic", "neon", "retro", "theme", "music", "font", "fonts",
    "design", "colors", "colours", "palette", "synth", "synthwave", "arcade", "disco", "vaporwave", "era", "kid",
    "movie", "film", "tv", "sitcom", "poster", "type", "typography", "glam", "grunge", "pop", "rock",
];

/// Whether "80s" at `i` is a decade ("a retro 80s neon vibe").
fn is_decade(tokens: &[Token], i: usize, word: &str) -> bool {
    let Some(n) = word.strip_suffix('s').and_then(|d| d.parse::<u32>().ok()) else { return false };
    let decade_like = n % 10 == 0 && ((20..=90).contains(&n) || (1900..=2090).contains(&n));
    if !decade_like {
        return false;
    }
    if n >= 1900 {
        return true;
    }
    let prev = i.checked_sub(1).and_then(|p| word_at(tokens, p));
    let next = word_at(tokens, i + 1);
    if prev.is_some_and(|p| ["the", "retro", "early", "late", "mid", "'"].contains(&p))
        || next.is_some_and(|w| DECADE_FOLLOWERS.contains(&w))
    {
        return true;
    }
    if next.is_none_or(|w| ["long", "longer", "shorter", "each", "per", "and", "to", "or", "max", "total"].contains(&w))
    {
        return false;
    }
    n >= 50
}

/// Words after "a second" that make it a length, not an ordinal ("a second quote").
#[rustfmt::skip]
const AFTER_SINGLE_UNIT: &[&str] = &[
    "long", "longer", "shorter", "more", "less", "and", "of", "per", "or", "later", "earlier", "in", "to", "for",
    "each", "max", "maximum", "total", "tops", "only", "please", "off", "from",
];

/// An amount in seconds starting at `i`, and the index after it.
fn amount_at(tokens: &[Token], i: usize) -> Option<(f64, usize)> {
    let t = tokens.get(i)?;
    // "5s", "2.5s", "1m30s", "1500ms".
    if t.kind == Kind::Word && t.text.starts_with(|c: char| c.is_ascii_digit()) {
        if is_decade(tokens, i, &t.text) {
            return None;
        }
        return glued_seconds(&t.text).map(|s| (s, i + 1));
    }
    // "half a minute", "half a second".
    if t.is("half")
        && word_at(tokens, i + 1).is_some_and(|w| w == "a" || w == "an")
        && let Some(unit) = word_at(tokens, i + 2).and_then(unit_seconds)
    {
        return Some((0.5 * unit, i + 3));
    }
    // "a minute", "a minute and a half", "one second".
    if t.is_any(&["a", "an", "one"])
        && let Some(w) = word_at(tokens, i + 1)
        && let Some(unit) = unit_seconds(w)
        && ["second", "minute", "hour", "sec", "min"].contains(&w)
    {
        if word_at(tokens, i + 2).is_some_and(|n| !AFTER_SINGLE_UNIT.contains(&n)) {
            return None;
        }
        return Some(with_half_and_rest(tokens, unit, unit, i + 2));
    }
    // "a couple of seconds".
    if t.is("a") && word_at(tokens, i + 1) == Some("couple") {
        let mut j = i + 2;
        if word_at(tokens, j) == Some("of") {
            j += 1;
        }
        let unit = word_at(tokens, j).and_then(unit_seconds)?;
        return Some((2.0 * unit, j + 1));
    }
    let (n, mut j) = number_at(tokens, i)?;
    // "1:30" (minutes:seconds).
    if tokens.get(j).is_some_and(|t| t.is_punct(':'))
        && let Some(sec) = tokens.get(j + 1).filter(|t| t.kind == Kind::Number && t.text.len() == 2)
        && let Some(s) = sec.number.filter(|s| *s < 60.0)
    {
        j += 2;
        if word_at(tokens, j).and_then(unit_seconds).is_some_and(|u| u == 60.0) {
            j += 1;
        }
        return Some((n * 60.0 + s, j));
    }
    // "2 and a half minutes".
    if word_at(tokens, j) == Some("and")
        && word_at(tokens, j + 1) == Some("a")
        && word_at(tokens, j + 2) == Some("half")
        && let Some(unit) = word_at(tokens, j + 3).and_then(unit_seconds)
    {
        return Some(((n + 0.5) * unit, j + 4));
    }
    let unit = word_at(tokens, j).and_then(unit_seconds)?;
    if word_at(tokens, j) == Some("m") || word_at(tokens, j) == Some("h") {
        // A lone "m" or "h" is too often not a unit ("2 h" is rare; "5 m" reads as metres).
        return None;
    }
    Some(with_half_and_rest(tokens, n * unit, unit, j + 1))
}

/// Continues an amount: "... and a half", "... 30 seconds", "... and 30 seconds".
fn with_half_and_rest(tokens: &[Token], value: f64, unit: f64, j: usize) -> (f64, usize) {
    if word_at(tokens, j) == Some("and")
        && word_at(tokens, j + 1) == Some("a")
        && word_at(tokens, j + 2) == Some("half")
    {
        return (value + 0.5 * unit, j + 3);
    }
    let k = if word_at(tokens, j) == Some("and") { j + 1 } else { j };
    if let Some((n, after)) = number_at(tokens, k)
        && let Some(u) = word_at(tokens, after).and_then(unit_seconds)
        && u < unit
    {
        return (value + n * u, after + 1);
    }
    (value, j)
}

/// Direction words in a clause: -1 shortens, +1 lengthens, 0 unknown.
fn clause_direction(tokens: &[Token], range: &Range<usize>) -> i8 {
    for t in tokens.get(range.clone()).unwrap_or(&[]) {
        if t.is_any(&[
            "shorten", "trim", "cut", "reduce", "decrease", "remove", "shorter", "less", "take", "shave", "fewer",
        ]) {
            return -1;
        }
        if t.is_any(&[
            "extend", "lengthen", "add", "increase", "longer", "more", "prolong", "stretch", "extra", "another",
        ]) {
            return 1;
        }
    }
    0
}

/// Every duration expression in `range`, skipping `consumed` tokens (scene names).
pub(crate) fn find(tokens: &[Token], range: Range<usize>, consumed: &[bool]) -> Vec<DurationExpr> {
    let mut found = Vec::new();
    let is_consumed = |i: usize| consumed.get(i).copied().unwrap_or(false);
    let mut i = range.start;
    while i < range.end {
        if is_consumed(i) {
            i += 1;
            continue;
        }
        // "by 50%", "50% shorter", "to 80%".
        if let Some(n) = tokens.get(i).and_then(|t| t.number)
            && tokens.get(i + 1).is_some_and(|t| t.is_punct('%'))
        {
            let prev = i.checked_sub(1).and_then(|p| word_at(tokens, p));
            let next = word_at(tokens, i + 2);
            let share = n / 100.0;
            // A percentage is about length only where the clause says so
            // ("increase the font size by 20%" is not).
            let about_length = tokens.get(range.clone()).unwrap_or(&[]).iter().any(|t| {
                t.is_any(&["duration", "length", "runtime", "long", "time", "shorter", "longer", "shorten", "lengthen"])
            });
            let factor = if !about_length {
                None
            } else {
                match (prev, next) {
                    (_, Some("shorter" | "less")) => Some(1.0 - share),
                    (_, Some("longer" | "more")) => Some(1.0 + share),
                    (Some("by"), _) => match clause_direction(tokens, &range) {
                        -1 => Some(1.0 - share),
                        1 => Some(1.0 + share),
                        _ => None,
                    },
                    (Some("to"), _) => Some(share),
                    _ => None,
                }
            };
            if let Some(f) = factor.filter(|f| *f > 0.0) {
                let end = if next.is_some_and(|w| ["shorter", "less", "longer", "more"].contains(&w)) {
                    i + 3
                } else {
                    i + 2
                };
                found.push(DurationExpr { start: i, end, amount: Amount::Factor(f) });
                i = end;
                continue;
            }
        }
        // "2 more seconds", "3 extra seconds", "2 fewer seconds".
        if let Some((n, j)) = number_at(tokens, i)
            && let Some(w) = word_at(tokens, j)
            && ["more", "extra", "fewer", "less"].contains(&w)
            && let Some(unit) = word_at(tokens, j + 1).and_then(unit_seconds)
        {
            let sign = if w == "fewer" || w == "less" { -1.0 } else { 1.0 };
            found.push(DurationExpr { start: i, end: j + 2, amount: Amount::Delta(sign * n * unit) });
            i = j + 2;
            continue;
        }
        if let Some((seconds, end)) = amount_at(tokens, i).filter(|&(_, end)| end <= range.end) {
            let prev = i.checked_sub(1).and_then(|p| word_at(tokens, p));
            let next = word_at(tokens, end);
            let amount = if next.is_some_and(|w| w == "longer" || w == "more") {
                Amount::Delta(seconds)
            } else if next.is_some_and(|w| w == "shorter" || w == "less") {
                Amount::Delta(-seconds)
            } else if prev.is_some_and(|w| ["add", "extra", "another"].contains(&w)) {
                Amount::Delta(seconds)
            } else if prev.is_some_and(|w| ["remove", "trim", "cut", "shave", "take", "subtract", "drop"].contains(&w))
            {
                Amount::Delta(-seconds)
            } else if prev == Some("by") {
                match clause_direction(tokens, &range) {
                    -1 => Amount::Delta(-seconds),
                    1 => Amount::Delta(seconds),
                    _ => Amount::Absolute(seconds),
                }
            } else {
                Amount::Absolute(seconds)
            };
            found.push(DurationExpr { start: i, end, amount });
            i = end;
            continue;
        }
        if let Some((factor, end)) = factor_at(tokens, i, &range) {
            found.push(DurationExpr { start: i, end, amount: Amount::Factor(factor) });
            i = end;
            continue;
        }
        i += 1;
    }
    if found.is_empty()
        && let Some(expr) = direction_only(tokens, &range, consumed)
    {
        found.push(expr);
    }
    found
}

/// "in half", "by half", "half as long", "twice as long", "double the length".
fn factor_at(tokens: &[Token], i: usize, range: &Range<usize>) -> Option<(f64, usize)> {
    let w = word_at(tokens, i)?;
    let next = word_at(tokens, i + 1);
    let next2 = word_at(tokens, i + 2);
    match w {
        "in" | "by" if next == Some("half") => Some((0.5, i + 2)),
        "half" | "twice" | "thrice" if next == Some("as") && next2 == Some("long") => {
            let f = match w {
                "half" => 0.5,
                "twice" => 2.0,
                _ => 3.0,
            };
            Some((f, i + 3))
        }
        "double" | "triple" | "halve" => {
            let about_length = (i + 1..(i + 4).min(range.end))
                .any(|k| word_at(tokens, k).is_some_and(|w| ["length", "duration", "runtime", "time"].contains(&w)));
            about_length.then(|| {
                let f = match w {
                    "double" => 2.0,
                    "triple" => 3.0,
                    _ => 0.5,
                };
                (f, i + 1)
            })
        }
        "half" if next == Some("the") && next2.is_some_and(|w| w == "length" || w == "duration") => Some((0.5, i + 3)),
        _ => None,
    }
}

/// "shorter", "shorten", "too long", "speed up": a direction without an amount.
fn direction_only(tokens: &[Token], range: &Range<usize>, consumed: &[bool]) -> Option<DurationExpr> {
    for i in range.clone() {
        if consumed.get(i).copied().unwrap_or(false) {
            continue;
        }
        let Some(w) = word_at(tokens, i) else { continue };
        let prev = i.checked_sub(1).and_then(|p| word_at(tokens, p));
        let next = word_at(tokens, i + 1);
        // "shorter, punchier copy", "a longer title": the length of an element.
        let element_follows = (i + 1..(i + 4).min(range.end))
            .any(|k| tokens.get(k).is_some_and(|t| t.kind == Kind::Word && is(&t.stem, list::ELEMENT_NOUNS)));
        let amount = match w {
            // "no longer renders" is not about length.
            "longer" if prev == Some("no") || prev == Some("any") => continue,
            "shorter" | "longer" if element_follows => continue,
            "shorter" | "shorten" | "trim" | "quicker" | "tighten" => Amount::Shorter,
            "longer" | "lengthen" | "extend" | "prolong" | "stretch" => Amount::Longer,
            "long" if prev == Some("too") => Amount::Shorter,
            "short" if prev == Some("too") => Amount::Longer,
            "speed" if next == Some("up") => Amount::Shorter,
            "slow" if next == Some("down") => Amount::Longer,
            "time" if prev == Some("less") => Amount::Shorter,
            "time" if prev == Some("more") => Amount::Longer,
            _ => continue,
        };
        return Some(DurationExpr { start: i, end: i + 1, amount });
    }
    None
}

/// Seconds without a trailing ".0".
pub(crate) fn format_seconds(s: f64) -> String {
    if s.fract() == 0.0 && s.abs() < 1e12 { format!("{}", s as i64) } else { format!("{s}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::lexer::tokenize;

    fn amounts(p: &str) -> Vec<Amount> {
        let t = tokenize(p);
        let consumed = vec![false; t.len()];
        find(&t, 0..t.len(), &consumed).into_iter().map(|d| d.amount).collect()
    }

    fn seconds(p: &str) -> Option<f64> {
        match amounts(p).first() {
            Some(Amount::Absolute(s)) => Some(*s),
            _ => None,
        }
    }

    #[test]
    fn absolute_forms() {
        assert_eq!(seconds("make the intro 5 seconds"), Some(5.0));
        assert_eq!(seconds("make it 5s"), Some(5.0));
        assert_eq!(seconds("make it 1.5 seconds"), Some(1.5));
        assert_eq!(seconds("make the intro 2.5s long"), Some(2.5));
        assert_eq!(seconds("a 5-second intro"), Some(5.0));
        assert_eq!(seconds("last half a minute"), Some(30.0));
        assert_eq!(seconds("make it a minute and a half"), Some(90.0));
        assert_eq!(seconds("make it one and a half minutes"), Some(90.0));
        assert_eq!(seconds("change it to 1.5 minutes"), Some(90.0));
        assert_eq!(seconds("make it 2 and a half minutes"), Some(150.0));
        assert_eq!(seconds("make it 1:30"), Some(90.0));
        assert_eq!(seconds("make it 1 minute 30 seconds"), Some(90.0));
        assert_eq!(seconds("make it 1 minute and 30 seconds"), Some(90.0));
        assert_eq!(seconds("make it 1m30s"), Some(90.0));
        assert_eq!(seconds("make it 1500ms"), Some(1.5));
        assert_eq!(seconds("extend it to ten seconds"), Some(10.0));
        assert_eq!(seconds("make it twenty five seconds"), Some(25.0));
        assert_eq!(seconds("make it twenty-five seconds"), Some(25.0));
        assert_eq!(seconds("make it last one minute"), Some(60.0));
        assert_eq!(seconds("keep it to a couple of seconds"), Some(2.0));
        assert_eq!(seconds("make the outro 30s"), Some(30.0));
        assert_eq!(seconds("trim it down to 7 sec"), Some(7.0));
    }

    #[test]
    fn not_durations() {
        assert!(amounts("give it a retro 80s neon vibe").is_empty());
        assert!(amounts("an 80s feel").is_empty());
        assert!(amounts("add a second quote to the testimonials").is_empty());
        assert!(amounts("move the second scene").is_empty());
        assert!(amounts("show our three pricing tiers").is_empty());
        assert!(amounts("make scene 2 blue").is_empty());
        assert!(amounts("it no longer renders").is_empty());
    }

    #[test]
    fn relative_forms() {
        assert_eq!(amounts("make it 2 seconds longer"), [Amount::Delta(2.0)]);
        assert_eq!(amounts("make it 2 seconds shorter"), [Amount::Delta(-2.0)]);
        assert_eq!(amounts("add 3 seconds to the outro"), [Amount::Delta(3.0)]);
        assert_eq!(amounts("trim 2 seconds off the intro"), [Amount::Delta(-2.0)]);
        assert_eq!(amounts("shorten the intro by 2 seconds"), [Amount::Delta(-2.0)]);
        assert_eq!(amounts("give the intro 2 more seconds"), [Amount::Delta(2.0)]);
        assert_eq!(amounts("cut the demo in half"), [Amount::Factor(0.5)]);
        assert_eq!(amounts("make it twice as long"), [Amount::Factor(2.0)]);
        assert_eq!(amounts("double the length of the intro"), [Amount::Factor(2.0)]);
        assert_eq!(amounts("make the outro shorter"), [Amount::Shorter]);
        assert_eq!(amounts("the intro is too long"), [Amount::Shorter]);
        assert_eq!(amounts("increase the duration by 50%"), [Amount::Factor(1.5)]);
        assert_eq!(amounts("make it 25% shorter"), [Amount::Factor(0.75)]);
        assert!(amounts("increase the font size by 20%").is_empty());
        assert_eq!(amounts("slow down the intro"), [Amount::Longer]);
        assert!(amounts("shorter, punchier copy").is_empty());
    }

    #[test]
    fn resolve_against_current_length() {
        assert_eq!(Amount::Delta(2.0).resolve(Some(6.0)), Some(8.0));
        assert_eq!(Amount::Factor(0.5).resolve(Some(10.0)), Some(5.0));
        assert_eq!(Amount::Delta(-9.0).resolve(Some(6.0)), None);
        assert_eq!(Amount::Delta(2.0).resolve(None), None);
        assert_eq!(Amount::Absolute(4.0).resolve(None), Some(4.0));
        assert_eq!(Amount::Shorter.resolve(Some(4.0)), None);
    }
}
