//! User preferences read from prompts, and how a new sighting updates a
//! remembered one. Pure functions; the orchestration wires them into the
//! memory bank (`user_preference` items, key = [`ExtractedPreference::key`]).
//!
//! Extraction is conservative (precision over recall). A sentence yields a
//! preference only when it says something lasting:
//! - an explicit statement, "I like / prefer / love ...", "always ...",
//!   "from now on ...", "by default ...", "our brand ..." → confidence 0.8;
//! - a project-wide instruction, "keep it ...", "make everything ...",
//!   "every scene ...", "stick to ...", "use our ..." → 0.7;
//! - a dislike, "I don't like ...", "avoid ...", "never use ...", "no ..."
//!   → the value "no <value>" at 0.75;
//! - an aspect ratio or format ("9:16", "vertical video") → 0.7, a format
//!   being project-wide by nature.
//!
//! A one-off edit ("make the intro background dark blue") is an
//! instruction, not a preference; it yields only a weak signal
//! ([`ONE_OFF_CONFIDENCE`]) for visual keys (color, background, font,
//! style, mood), which repetition can raise.
//!
//! Keys: `style`, `pace`, `duration` (preferred scene length),
//! `video_duration`, `color`, `background`, `theme` (dark/light), `font`,
//! `mood`, `tone` (of the copy), `music`, `aspect_ratio`, `animation`,
//! `design` (layout and decoration cues such as rounded corners),
//! `language`.

use crate::text::duration::{self, Amount, format_seconds};
use crate::text::lexer::{Kind, Token, tokenize};
use crate::text::lexicon::preference::*;

/// A preference read from a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractedPreference {
    /// What it is about, e.g. "font".
    pub key: String,
    /// The preferred value, lowercase, e.g. "serif" or "no gradients".
    pub value: String,
    /// How sure the extraction is, 0..1.
    pub confidence: f64,
}

/// An explicit statement ("I prefer ...", "always ...").
pub const STATED_CONFIDENCE: f64 = 0.8;
/// A project-wide instruction ("keep it ...", "make everything ...").
pub const PROJECT_WIDE_CONFIDENCE: f64 = 0.7;
/// A dislike ("avoid ...", "I don't like ...").
pub const DISLIKE_CONFIDENCE: f64 = 0.75;
/// A one-off edit's hint at a visual taste.
pub const ONE_OFF_CONFIDENCE: f64 = 0.3;
/// Share of the remaining doubt a repeat removes: `c + (1 - c) * REPEAT_GAIN`.
pub const REPEAT_GAIN: f64 = 0.3;
/// Confidence never reaches certainty: a preference stays revisable.
pub const MAX_CONFIDENCE: f64 = 0.95;
/// Below this, a contradicting sighting is a weak signal (a one-off edit).
pub const WEAK_SIGNAL: f64 = 0.5;

/// How a sentence states its preferences.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Strength {
    Stated,
    ProjectWide,
    Dislike,
    OneOff,
}

impl Strength {
    fn confidence(self) -> f64 {
        match self {
            Strength::Stated => STATED_CONFIDENCE,
            Strength::ProjectWide => PROJECT_WIDE_CONFIDENCE,
            Strength::Dislike => DISLIKE_CONFIDENCE,
            Strength::OneOff => ONE_OFF_CONFIDENCE,
        }
    }
}

fn words(tokens: &[Token]) -> Vec<&str> {
    tokens.iter().map(|t| t.text.as_str()).collect()
}

fn has_seq(w: &[&str], seq: &[&str]) -> Option<usize> {
    if seq.is_empty() || w.len() < seq.len() {
        return None;
    }
    (0..=w.len() - seq.len()).find(|&i| w[i..i + seq.len()] == *seq)
}

/// Where the sentence's preference statement starts and how strong it is.
fn strength(w: &[&str]) -> Option<(Strength, usize)> {
    let lists = [
        (DISLIKE_PHRASES, Strength::Dislike),
        (STATED_PHRASES, Strength::Stated),
        (PROJECT_WIDE_PHRASES, Strength::ProjectWide),
    ];
    for (list, strength) in lists {
        let found = list.iter().filter_map(|seq| has_seq(w, seq)).min();
        if let Some(at) = found {
            return Some((strength, at));
        }
    }
    None
}

/// Whether a sentence is about one scene ("the intro", "scene 2", "this
/// scene") rather than the whole project.
fn names_a_scene(w: &[&str]) -> bool {
    w.iter().enumerate().any(|(i, x)| {
        let prev = i.checked_sub(1).and_then(|p| w.get(p)).copied();
        let next = w.get(i + 1).copied();
        SCENE_KINDS.contains(x)
            || (SCENE_WORDS.contains(x)
                && (prev.is_some_and(|p| SCENE_DETERMINERS.contains(&p))
                    || next.is_some_and(|n| n.parse::<u32>().is_ok())))
    })
}

/// Whether a sentence is an edit instruction ("make the intro blue").
fn is_edit(w: &[&str]) -> bool {
    w.iter().find(|x| !EDIT_FILLERS.contains(x)).is_some_and(|x| EDIT_VERBS.contains(x))
}

fn first_of<'a>(w: &[&'a str], from: usize, list: &[&str]) -> Option<(usize, &'a str)> {
    w.iter().enumerate().skip(from).find(|(_, x)| list.contains(x)).map(|(i, x)| (i, *x))
}

fn any_of(w: &[&str], list: &[&str]) -> bool {
    w.iter().any(|x| list.contains(x))
}

/// The value a spelling table gives `word`, if it lists it.
fn spelled(table: &[(&str, &'static str)], word: &str) -> Option<&'static str> {
    table.iter().find(|(spelling, _)| *spelling == word).map(|(_, value)| *value)
}

/// A colour phrase at or after `from`: "dark blue", "brand blue", "#1a1a2e", "pastels".
fn color_phrase(w: &[&str], from: usize) -> Option<String> {
    for (i, x) in w.iter().enumerate().skip(from) {
        if x.starts_with('#') && x.len() >= 4 && x[1..].chars().all(|c| c.is_ascii_hexdigit()) {
            return Some((*x).to_string());
        }
        if COLORS.contains(x) {
            let mut start = i;
            while start > from && start > i.saturating_sub(2) && COLOR_MODIFIERS.contains(&w[start - 1]) {
                start -= 1;
            }
            let mut value = w[start..=i].join(" ");
            // "navy and gold", "black and white": a two-colour palette.
            if w.get(i + 1) == Some(&"and")
                && let Some(second) = w.get(i + 2).filter(|x| COLORS.contains(x))
            {
                value = format!("{value} and {second}");
            }
            return Some(spelled(COLOR_SPELLINGS, &value).map_or(value, str::to_string));
        }
        if PALETTE_TEMPERATURES.contains(x) && w.get(i + 1).is_some_and(|n| PALETTE_NOUNS.contains(n)) {
            return Some(format!("{x} tones"));
        }
    }
    None
}

/// One sentence as the value readers see it.
struct Sentence<'a> {
    /// The whole sentence, for nouns that say what a value is about ("fonts").
    all: &'a [&'a str],
    /// The part values are read from (it stops before "instead of ...").
    words: &'a [&'a str],
    /// The tokens of `words`.
    tokens: &'a [Token],
    /// Where the preference statement starts; values are read from here on.
    from: usize,
    strength: Strength,
}

impl<'a> Sentence<'a> {
    /// Whether the whole sentence has one of these words.
    fn has(&self, list: &[&str]) -> bool {
        any_of(self.all, list)
    }

    /// Whether the value part has this phrase.
    fn says(&self, phrase: &[&str]) -> bool {
        has_seq(self.words, phrase).is_some()
    }

    /// The first of these words in the value part, with its index.
    fn first_of(&self, list: &[&str]) -> Option<(usize, &'a str)> {
        first_of(self.words, self.from, list)
    }

    fn color_phrase(&self) -> Option<String> {
        color_phrase(self.words, self.from)
    }
}

/// The value for `key` in one sentence's words (after `from`).
///
/// `all` is the whole sentence, for nouns that say what a value is about
/// ("fonts"); `w` is the part values are read from (it stops before
/// "instead of ...").
fn values(all: &[&str], w: &[&str], tokens: &[Token], from: usize, strength: Strength) -> Vec<(&'static str, String)> {
    let s = Sentence { all, words: w, tokens, from, strength };
    let mut out: Vec<(&'static str, String)> = Vec::new();
    out.extend(aspect_ratio(&s).map(|r| ("aspect_ratio", r)));
    out.extend(pace(&s).map(|p| ("pace", p.to_string())));
    out.extend(length(&s));
    out.extend(font(&s).map(|f| ("font", f)));
    // Backgrounds before colours: "dark backgrounds" is a background taste.
    let background = s.has(BACKGROUND_NOUNS);
    if background {
        out.extend(background_value(&s).map(|b| ("background", b)));
    } else {
        out.extend(theme(&s).map(|t| ("theme", t.to_string())));
    }
    let font_found = out.iter().any(|(k, _)| *k == "font");
    if !background {
        out.extend(color(&s, font_found).map(|c| ("color", c)));
    }
    out.extend(tone(&s).map(|t| ("tone", t.to_string())));
    out.extend(music(&s).map(|m| ("music", m)));
    out.extend(animation(&s).map(|a| ("animation", a.to_string())));
    if !background {
        out.extend(design(&s).map(|d| ("design", d.to_string())));
    }
    out.extend(language(&s).map(|l| ("language", l.to_string())));
    // Style and mood last: their words overlap with the keys above.
    let style_and_mood = style_and_mood(&s, &out);
    out.extend(style_and_mood);
    out
}

/// Aspect ratio: "16:9", "vertical video", "for tiktok".
fn aspect_ratio(s: &Sentence<'_>) -> Option<String> {
    let written = s.tokens.windows(3).find_map(|t| {
        (t[0].kind == Kind::Number && t[1].is_punct(':') && t[2].kind == Kind::Number)
            .then(|| format!("{}:{}", t[0].text, t[2].text))
    });
    let written = written.filter(|r| ASPECT_RATIOS.contains(&r.as_str()));
    written.or_else(|| {
        let format_word = s.has(FORMAT_NOUNS);
        if s.has(PORTRAIT_WORDS) && format_word || s.has(PORTRAIT_PLATFORMS) {
            Some("9:16".to_string())
        } else if s.has(SQUARE_WORDS) && format_word {
            Some("1:1".to_string())
        } else if s.has(LANDSCAPE_WORDS) && format_word {
            Some("16:9".to_string())
        } else {
            None
        }
    })
}

/// Pace needs a pace noun: "fast-paced", "quick cuts", "a slow tempo".
fn pace(s: &Sentence<'_>) -> Option<&'static str> {
    if !(s.has(PACE_NOUNS) || PACE_PHRASES.iter().any(|p| s.says(p))) {
        return None;
    }
    if s.first_of(FAST_WORDS).is_some() {
        Some("fast")
    } else if s.first_of(SLOW_WORDS).is_some() {
        Some("slow")
    } else if s.first_of(MODERATE_WORDS).is_some() {
        Some("moderate")
    } else {
        None
    }
}

/// Scene or video length: "5 second scenes", "scenes under 5 seconds",
/// "short scenes", "keep the video under 30 seconds".
fn length(s: &Sentence<'_>) -> Option<(&'static str, String)> {
    let scene_noun = s.has(SCENE_NOUNS);
    let video_noun = s.has(VIDEO_NOUNS) && !scene_noun;
    if !scene_noun && !video_noun {
        return None;
    }
    let key = if scene_noun { "duration" } else { "video_duration" };
    if let Some(seconds) = stated_seconds(s) {
        return Some((key, seconds));
    }
    let (_, x) = s.first_of(LENGTH_WORDS)?;
    Some((key, if x.starts_with("short") || x == "brief" { "short" } else { "long" }.to_string()))
}

/// The first absolute duration from `from` on, with its qualifier: "under 5 seconds".
fn stated_seconds(s: &Sentence<'_>) -> Option<String> {
    let tokens = s.tokens;
    let consumed = vec![false; tokens.len()];
    duration::find(tokens, s.from.min(tokens.len())..tokens.len(), &consumed).into_iter().find_map(|d| {
        let Amount::Absolute(secs) = d.amount else { return None };
        let qualifier = d.start.checked_sub(1).and_then(|p| tokens.get(p)).and_then(|p| length_qualifier(&p.text));
        Some(format!("{}{} seconds", qualifier.unwrap_or(""), format_seconds(secs)))
    })
}

/// The bound a word before a length puts on it ("under 5 seconds").
fn length_qualifier(word: &str) -> Option<&'static str> {
    spelled(LENGTH_QUALIFIERS, word)
}

/// Typography: needs a font noun or a family name.
fn font(s: &Sentence<'_>) -> Option<String> {
    let family = s.first_of(FONT_FAMILIES);
    if !s.has(FONT_NOUNS) && family.is_none() {
        return None;
    }
    if let Some((_, f)) = family {
        return Some(f.to_string());
    }
    if (s.from..s.words.len()).any(|i| SANS_WORDS.contains(&s.words[i])) {
        return Some("sans-serif".to_string());
    }
    s.first_of(FONTS).map(|(_, f)| f.to_string())
}

/// A background colour or look ("dark blue", "gradient"), in a sentence about backgrounds.
fn background_value(s: &Sentence<'_>) -> Option<String> {
    if let Some(c) = s.color_phrase() {
        return Some(c);
    }
    let (_, x) = s.first_of(BACKGROUND_LOOKS)?;
    Some(spelled(BACKGROUND_LOOK_SPELLINGS, x).unwrap_or(x).to_string())
}

/// A dark or light theme: "dark mode", or "make everything darker" when
/// said of the whole project.
fn theme(s: &Sentence<'_>) -> Option<&'static str> {
    if s.has(THEME_NOUNS)
        && let Some((_, x)) = s.first_of(THEMES)
    {
        return Some(if x == "dark" { "dark" } else { "light" });
    }
    if s.strength == Strength::OneOff {
        return None;
    }
    let (_, x) = s.first_of(THEME_SHIFTS)?;
    Some(if x == "darker" { "dark" } else { "light" })
}

/// A palette taste. A colour noun makes a colour a palette taste; without
/// one, a colour in a font sentence is the font's ("always use white fonts").
fn color(s: &Sentence<'_>, font_found: bool) -> Option<String> {
    let palette = s.has(COLOR_NOUNS) || (!font_found && (s.has(BRAND_NOUNS) || s.strength != Strength::OneOff));
    if palette { s.color_phrase() } else { None }
}

/// Tone is about the copy; it needs a copy noun.
fn tone<'a>(s: &Sentence<'a>) -> Option<&'a str> {
    if !s.has(TONE_NOUNS) {
        return None;
    }
    s.first_of(TONE).map(|(_, t)| t)
}

/// Music: a style ("lo-fi", "hip hop") or "none".
fn music(s: &Sentence<'_>) -> Option<String> {
    if !s.has(MUSIC_NOUNS) {
        return None;
    }
    if NO_MUSIC_PHRASES.iter().any(|p| s.says(p)) {
        return Some("none".to_string());
    }
    let (i, m) = s.first_of(MUSIC)?;
    let rest = &s.words[i..];
    match MUSIC_SPELLINGS.iter().find(|(spelling, _)| rest.starts_with(spelling)) {
        Some((_, style)) => Some((*style).to_string()),
        // "lo" or "hip" alone is half of a style, not one.
        None if MUSIC_SPELLINGS.iter().any(|(spelling, _)| spelling.len() > 1 && spelling[0] == m) => None,
        None => Some(m.to_string()),
    }
}

/// Animation and transitions: a style or "none".
fn animation<'a>(s: &Sentence<'a>) -> Option<&'a str> {
    if !s.has(ANIMATION_NOUNS) {
        return None;
    }
    if NO_ANIMATION_PHRASES.iter().any(|p| s.says(p)) {
        return Some("none");
    }
    s.first_of(ANIMATION).map(|(_, a)| a)
}

/// Design cues: layout and decoration.
fn design(s: &Sentence<'_>) -> Option<&'static str> {
    let rest = &s.words[s.from.min(s.words.len())..];
    DESIGN_CUES.iter().find(|(phrase, _)| has_seq(rest, phrase).is_some()).map(|(_, v)| *v)
}

/// Language of the copy: "in Spanish".
fn language<'a>(s: &Sentence<'a>) -> Option<&'a str> {
    let (i, lang) = s.first_of(LANGUAGES)?;
    (i > 0 && s.words[i - 1] == "in" || s.has(LANGUAGE_NOUNS)).then_some(lang)
}

/// Style and mood, unless a word they would read is already another key's
/// value; none at all in a sentence about tone, music, animation or pace.
fn style_and_mood(s: &Sentence<'_>, found: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let found_key = |keys: &[&str]| found.iter().any(|(k, _)| keys.contains(k));
    if found_key(&["tone", "music", "animation", "pace"]) {
        return out;
    }
    let taken: Vec<&str> = found.iter().flat_map(|(_, v)| v.split(' ')).collect();
    let styles = styles(s, &taken, found_key(&["font"]));
    if !styles.is_empty() {
        out.push(("style", styles.join(", ")));
    }
    if (s.has(MOOD_NOUNS) || s.strength != Strength::OneOff)
        && let Some((_, m)) = s.first_of(MOOD)
        && !taken.contains(&m)
        && !(m == "warm" && found_key(&["color", "background"]))
        && !(m == "bright" && found_key(&["theme"]))
    {
        out.push(("mood", m.to_string()));
    }
    out
}

/// The distinct styles named from `from` on, except words already taken
/// ("bold" is the font's when a font was found).
fn styles(s: &Sentence<'_>, taken: &[&str], font_found: bool) -> Vec<&'static str> {
    let mut styles = Vec::new();
    for x in s.words.iter().skip(s.from) {
        let Some(&(_, v)) = STYLE.iter().find(|(k, _)| k == x) else { continue };
        if taken.contains(&v) || v == "bold" && font_found || styles.contains(&v) {
            continue;
        }
        styles.push(v);
    }
    styles
}

/// Splits a prompt into sentences (token ranges).
fn sentences(tokens: &[Token]) -> Vec<&[Token]> {
    tokens
        .split(|t| t.kind == Kind::Punct && SENTENCE_ENDS.contains(&t.text.as_str()))
        .filter(|s| !s.is_empty())
        .collect()
}

/// Reads the preferences a prompt states. Conservative: a sentence without
/// a preference statement yields nothing, except weak visual hints from a
/// one-off edit. One value per key: a later statement in the same prompt
/// wins over an earlier one of equal strength.
pub fn extract(prompt: &str) -> Vec<ExtractedPreference> {
    let tokens = tokenize(prompt);
    let mut found: Vec<ExtractedPreference> = Vec::new();
    for sentence in sentences(&tokens) {
        // Quoted text is content ("change the title to 'Always blue'"), not a statement.
        let sentence: Vec<Token> = sentence.iter().filter(|t| t.kind != Kind::Quote).cloned().collect();
        let w = words(&sentence);
        let (strength, from) = match strength(&w) {
            // "I don't want the intro to be blue", "keep the intro short": about one
            // scene, so a one-off whatever the wording.
            Some((Strength::ProjectWide | Strength::Dislike, _)) if names_a_scene(&w) => (Strength::OneOff, 0),
            Some(s) => s,
            None if is_edit(&w) => (Strength::OneOff, 0),
            None => {
                // A format is project-wide even when merely mentioned ("make it 9:16").
                let vals = values(&w, &w, &sentence, 0, Strength::ProjectWide);
                for (key, value) in vals.into_iter().filter(|(k, _)| *k == "aspect_ratio") {
                    push(&mut found, key, value, PROJECT_WIDE_CONFIDENCE);
                }
                continue;
            }
        };
        // "use serif instead of sans": what follows "instead of" is not preferred.
        let cut = EXCLUSIONS
            .iter()
            .filter_map(|x| w.iter().position(|y| y == x))
            .min()
            .filter(|&c| c > from)
            .unwrap_or(w.len());
        let all = &w[..];
        let w = &w[..cut];
        let sentence = &sentence[..cut];
        let intensified = w.iter().any(|x| INTENSIFIERS.contains(x));
        let mut confidence = strength.confidence();
        if intensified && strength != Strength::OneOff {
            confidence = (confidence + 0.05).min(0.9);
        }
        for (key, value) in values(all, w, sentence, from, strength) {
            let one_off_visual = ["color", "background", "font", "style", "mood"].contains(&key);
            if strength == Strength::OneOff && !one_off_visual && key != "aspect_ratio" {
                continue;
            }
            let value = if strength == Strength::Dislike && value != "none" { format!("no {value}") } else { value };
            // A format is project-wide even inside an edit ("make it 9:16").
            let c = if key == "aspect_ratio" { confidence.max(PROJECT_WIDE_CONFIDENCE) } else { confidence };
            push(&mut found, key, value, c);
        }
    }
    found
}

fn push(found: &mut Vec<ExtractedPreference>, key: &str, value: String, confidence: f64) {
    if let Some(existing) = found.iter_mut().find(|p| p.key == key) {
        if confidence >= existing.confidence {
            existing.value = value;
            existing.confidence = confidence;
        }
        return;
    }
    found.push(ExtractedPreference { key: key.to_string(), value, confidence });
}

/// Whether two preference values are the same (case and spacing aside).
pub fn same_value(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>().join(" ");
    norm(a) == norm(b)
}

/// Combines a remembered preference (value, confidence, occurrences) with a
/// new sighting of the same key; returns the value and confidence to store.
///
/// - Nothing remembered: the new value at its confidence.
/// - The same value again: confidence rises with diminishing returns,
///   `b + (1 - b) * REPEAT_GAIN` where `b = max(old, new)`, capped at
///   [`MAX_CONFIDENCE`] (0.8 → 0.86 → 0.902 → 0.931 → 0.95).
/// - A different value: it replaces the old one, at its own confidence. The
///   one exception is a weak sighting (below [`WEAK_SIGNAL`], i.e. a one-off
///   edit) against a stronger remembered preference: a single edit of one
///   scene does not overturn a stated taste. It erodes it instead, to
///   `old - new * REPEAT_GAIN / occurrences` (a preference seen more often
///   erodes more slowly), and replaces it once the eroded confidence would
///   fall to the new one.
///
/// Occurrences to store: see [`next_occurrences`].
pub fn merge(existing: Option<(&str, f64, u32)>, new: &ExtractedPreference) -> (String, f64) {
    let new_c = clamp(new.confidence);
    let Some((old_value, old_c, occurrences)) = existing else {
        return (new.value.clone(), new_c);
    };
    let old_c = clamp(old_c);
    if same_value(old_value, &new.value) {
        let base = old_c.max(new_c);
        return (old_value.to_string(), (base + (1.0 - base) * REPEAT_GAIN).min(MAX_CONFIDENCE).max(base));
    }
    if new_c >= WEAK_SIGNAL || new_c >= old_c {
        return (new.value.clone(), new_c);
    }
    let eroded = old_c - new_c * REPEAT_GAIN / f64::from(occurrences.max(1));
    if eroded <= new_c { (new.value.clone(), new_c) } else { (old_value.to_string(), eroded) }
}

/// The occurrence count to store after [`merge`]: one more when the value
/// was seen again, 1 when the new value replaced the old one, unchanged when
/// a weak contradiction only eroded it.
pub fn next_occurrences(existing: Option<(&str, u32)>, new_value: &str, merged_value: &str) -> u32 {
    match existing {
        None => 1,
        Some((old, n)) if same_value(old, new_value) => n.saturating_add(1),
        Some((old, n)) if same_value(old, merged_value) => n,
        Some(_) => 1,
    }
}

fn clamp(c: f64) -> f64 {
    if c.is_finite() { c.clamp(0.0, MAX_CONFIDENCE) } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(prompt: &str, key: &str) -> Option<(String, f64)> {
        extract(prompt).into_iter().find(|p| p.key == key).map(|p| (p.value, p.confidence))
    }

    fn pref(key: &str, value: &str, confidence: f64) -> ExtractedPreference {
        ExtractedPreference { key: key.into(), value: value.into(), confidence }
    }

    #[test]
    fn stated_preferences() {
        assert_eq!(get("I like minimal designs", "style"), Some(("minimal".into(), STATED_CONFIDENCE)));
        assert_eq!(get("I prefer dark backgrounds", "background"), Some(("dark".into(), STATED_CONFIDENCE)));
        assert_eq!(get("always use serif fonts", "font").map(|p| p.0), Some("serif".into()));
        assert!(get("always use serif fonts", "font").is_some_and(|p| p.1 > STATED_CONFIDENCE));
        assert_eq!(get("use our brand blue", "color"), Some(("brand blue".into(), STATED_CONFIDENCE)));
        assert_eq!(get("From now on, use sans-serif fonts", "font").map(|p| p.0), Some("sans-serif".into()));
        assert_eq!(get("Our brand colors are navy and gold", "color").map(|p| p.0), Some("navy and gold".into()));
        assert_eq!(get("I love upbeat music", "music").map(|p| p.0), Some("upbeat".into()));
        assert_eq!(get("we prefer a friendly tone in the copy", "tone").map(|p| p.0), Some("friendly".into()));
        assert_eq!(get("I like smooth transitions", "animation").map(|p| p.0), Some("smooth".into()));
        assert_eq!(get("I always want rounded corners", "design").map(|p| p.0), Some("rounded corners".into()));
        assert_eq!(get("by default write everything in Spanish", "language").map(|p| p.0), Some("spanish".into()));
    }

    #[test]
    fn project_wide_instructions() {
        assert_eq!(get("keep it fast-paced", "pace"), Some(("fast".into(), PROJECT_WIDE_CONFIDENCE)));
        assert_eq!(get("Keep the pace fast", "pace"), Some(("fast".into(), PROJECT_WIDE_CONFIDENCE)));
        assert_eq!(get("keep the pacing slow and calm", "pace").map(|p| p.0), Some("slow".into()));
        assert_eq!(get("keep the style minimal", "style").map(|p| p.0), Some("minimal".into()));
        assert_eq!(get("keep the intro short", "pace"), None, "about one scene, not the video");
        assert_eq!(get("make everything darker", "theme"), Some(("dark".into(), PROJECT_WIDE_CONFIDENCE)));
        assert_eq!(get("keep scenes under 5 seconds", "duration").map(|p| p.0), Some("under 5 seconds".into()));
        assert_eq!(get("I like 4 second scenes", "duration").map(|p| p.0), Some("4 seconds".into()));
        assert_eq!(
            get("keep the video under 30 seconds", "video_duration").map(|p| p.0),
            Some("under 30 seconds".into())
        );
        assert_eq!(get("every scene should feel calm", "mood").map(|p| p.0), Some("calm".into()));
        assert_eq!(
            get("please keep the whole video under a minute", "video_duration").map(|p| p.0),
            Some("under 60 seconds".into())
        );
        assert_eq!(get("the music should be upbeat", "music"), Some(("upbeat".into(), PROJECT_WIDE_CONFIDENCE)));
        assert_eq!(
            get("we want a playful, colorful style with rounded corners", "style").map(|p| p.0),
            Some("playful, colorful".into())
        );
        assert_eq!(
            get("we want a playful, colorful style with rounded corners", "design").map(|p| p.0),
            Some("rounded corners".into())
        );
        let brand = extract("our brand font is Montserrat and our colors are teal and coral");
        assert!(brand.iter().any(|p| p.key == "font" && p.value == "montserrat"));
        assert!(brand.iter().any(|p| p.key == "color" && p.value == "teal and coral"));
    }

    #[test]
    fn aspect_ratio_is_project_wide() {
        assert_eq!(get("make it 9:16 for tiktok", "aspect_ratio"), Some(("9:16".into(), PROJECT_WIDE_CONFIDENCE)));
        assert_eq!(get("we need a vertical video", "aspect_ratio").map(|p| p.0), Some("9:16".into()));
        assert_eq!(get("I prefer square videos", "aspect_ratio").map(|p| p.0), Some("1:1".into()));
    }

    #[test]
    fn dislikes() {
        assert_eq!(get("I don't like serif fonts", "font"), Some(("no serif".into(), DISLIKE_CONFIDENCE)));
        assert_eq!(get("avoid gradients", "design").map(|p| p.0), Some("no gradients".into()));
        assert_eq!(get("no music please, I hate music", "music").map(|p| p.0), Some("none".into()));
    }

    #[test]
    fn one_off_edits_are_weak_and_limited() {
        assert_eq!(
            get("make the intro background dark blue", "background"),
            Some(("dark blue".into(), ONE_OFF_CONFIDENCE))
        );
        assert_eq!(
            get("change the title font in scene 2 to Georgia", "font"),
            Some(("georgia".into(), ONE_OFF_CONFIDENCE))
        );
        // A one-off scene length is an edit, not a taste.
        assert!(extract("make the intro 5 seconds").is_empty());
        assert!(extract("keep the intro short").is_empty());
        // Wanting something of one scene is a one-off too.
        assert!(extract("I don't want the intro to be blue").iter().all(|p| p.confidence <= ONE_OFF_CONFIDENCE));
        assert!(extract("the intro should be blue").iter().all(|p| p.confidence <= ONE_OFF_CONFIDENCE));
        assert!(extract("delete scene 2").is_empty());
    }

    #[test]
    fn conservative_on_non_statements() {
        for p in [
            "hi",
            "thanks!",
            "what colors are in this image?",
            "add a scene about pricing",
            "scene 3 is broken",
            "",
            "  ",
        ] {
            assert!(extract(p).is_empty(), "{p}: {:?}", extract(p));
        }
        // Quoted text is content, not a statement.
        assert!(
            extract("change the headline to 'We always love blue'").iter().all(|p| p.confidence <= ONE_OFF_CONFIDENCE)
        );
        // "instead of" excludes what follows.
        assert_eq!(get("always use serif instead of sans-serif fonts", "font").map(|p| p.0), Some("serif".into()));
    }

    #[test]
    fn later_statement_wins_within_a_prompt() {
        assert_eq!(
            get("I like dark backgrounds. Actually I prefer light backgrounds.", "background").map(|p| p.0),
            Some("light".into())
        );
    }

    #[test]
    fn merge_first_sighting() {
        assert_eq!(merge(None, &pref("font", "serif", 0.8)), ("serif".into(), 0.8));
    }

    #[test]
    fn merge_repeat_rises_with_diminishing_returns_and_a_cap() {
        let new = pref("font", "Serif", 0.8);
        let (v, c1) = merge(Some(("serif", 0.8, 1)), &new);
        assert_eq!(v, "serif");
        assert!((c1 - 0.86).abs() < 1e-9);
        let (_, c2) = merge(Some(("serif", c1, 2)), &new);
        assert!((c2 - 0.902).abs() < 1e-9);
        assert!(c2 - c1 < c1 - 0.8);
        let mut c = c2;
        for n in 3..50 {
            c = merge(Some(("serif", c, n)), &new).1;
        }
        assert!((c - MAX_CONFIDENCE).abs() < 1e-9);
        // A weak repeat still raises a weak memory.
        let (_, c) = merge(Some(("blue", 0.3, 1)), &pref("color", "blue", 0.3));
        assert!((c - 0.51).abs() < 1e-9);
        // A strong repeat lifts a weak memory past the strong sighting.
        let (_, c) = merge(Some(("blue", 0.3, 1)), &pref("color", "blue", 0.8));
        assert!((c - 0.86).abs() < 1e-9);
    }

    #[test]
    fn merge_contradiction_replaces() {
        assert_eq!(merge(Some(("serif", 0.9, 5)), &pref("font", "sans-serif", 0.7)), ("sans-serif".into(), 0.7));
        assert_eq!(merge(Some(("blue", 0.3, 1)), &pref("color", "red", 0.3)), ("red".into(), 0.3));
    }

    #[test]
    fn merge_weak_contradiction_erodes_a_stated_preference() {
        let (v, c) = merge(Some(("dark", 0.8, 1)), &pref("background", "white", 0.3));
        assert_eq!(v, "dark");
        assert!((c - 0.71).abs() < 1e-9);
        let (_, c3) = merge(Some(("dark", 0.8, 3)), &pref("background", "white", 0.3));
        assert!(c3 > c);
        // Eroded down to the weak signal's level, it is replaced.
        assert_eq!(merge(Some(("dark", 0.35, 1)), &pref("background", "white", 0.3)), ("white".into(), 0.3));
    }

    #[test]
    fn occurrences() {
        assert_eq!(next_occurrences(None, "serif", "serif"), 1);
        assert_eq!(next_occurrences(Some(("serif", 2)), "Serif", "serif"), 3);
        assert_eq!(next_occurrences(Some(("serif", 2)), "sans", "sans"), 1);
        assert_eq!(next_occurrences(Some(("dark", 4)), "white", "dark"), 4);
    }

    #[test]
    fn nonsense_confidence_is_clamped() {
        assert_eq!(merge(None, &pref("k", "v", f64::NAN)).1, 0.0);
        assert_eq!(merge(None, &pref("k", "v", 7.0)).1, MAX_CONFIDENCE);
    }
}
