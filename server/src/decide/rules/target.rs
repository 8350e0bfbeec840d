//! Which scenes a prompt talks about: names (full, partial, acronym, one
//! typo), ordinals ("scene 2", "the second scene", "last", "the last two
//! scenes"), status ("the broken scene"), "every scene", and pronouns.

use crate::model::{Scene, SceneStatus};

use crate::text::lexer::{Kind, Token, ordinal_value, tokenize, within_edit_distance, word_number};
use crate::text::lexicon::{
    DETERMINERS, NON_NAME_MODIFIERS, REFERENCE_MARKERS, SCENE_KIND_NAMES, is, list, verb_class,
};

/// How a mention picked its scenes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// The scene's whole name (or its acronym).
    Name,
    /// The whole name with a typo.
    Fuzzy,
    /// A one-word name that is also an element ("Quote", "Stats"): it may
    /// mean the element inside another scene.
    ElementName,
    /// One distinctive word of a longer name.
    Partial,
    /// One word of a name that is also an element ("title" of "Title Card").
    WeakPartial,
    /// A position.
    Ordinal,
    /// The broken scene(s).
    Status,
    /// Every scene.
    All,
}

impl How {
    /// Strength: 3 beats 2 beats 1.
    pub fn tier(self) -> u8 {
        match self {
            How::Name | How::Ordinal | How::Status | How::All => 3,
            How::Fuzzy | How::Partial | How::ElementName => 2,
            How::WeakPartial => 1,
        }
    }

    /// How the reasoning sentence says it.
    pub fn describe(self) -> &'static str {
        match self {
            How::Name => "named",
            How::Fuzzy => "named, allowing a typo",
            How::ElementName => "named",
            How::Partial | How::WeakPartial => "matched by part of its name",
            How::Ordinal => "by position",
            How::Status => "by its broken status",
            How::All => "every scene",
        }
    }
}

/// Why a mention names no existing scene.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// "scene 7" in a project of 3.
    OutOfRange(usize),
    /// "the pricing scene" with no such scene.
    Named(String),
    /// "the broken scene" when none is broken.
    NoneBroken,
}

/// What a mention refers to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refers {
    /// These scenes (indices into the scene list, in order).
    Scenes(Vec<usize>, How),
    /// Something that does not exist.
    Unresolved(Unresolved),
    /// "it", "this scene": whatever the conversation points at.
    Pronoun,
}

/// A span of the prompt that refers to scenes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mention {
    /// First token.
    pub start: usize,
    /// One past the last token.
    pub end: usize,
    /// What it refers to.
    pub refers: Refers,
    /// A point of comparison ("like the intro"), not the thing to change.
    pub reference: bool,
    /// Left out ("every scene except the intro"); also a reference.
    pub excluded: bool,
}

/// Scene mentions of a prompt, and which tokens belong to scene names.
#[derive(Debug, Default)]
pub(crate) struct Mentions {
    /// In prompt order.
    pub list: Vec<Mention>,
    /// Tokens that are part of a scene's full name; other rules skip them.
    pub consumed: Vec<bool>,
}

/// A scene name prepared for matching.
struct NameKey {
    /// Stemmed words of the name.
    words: Vec<String>,
    /// Initials, when the name has three words or more ("cta").
    acronym: Option<String>,
}

fn name_key(name: &str) -> NameKey {
    let words: Vec<String> = tokenize(name)
        .into_iter()
        .filter(|t| t.is_wordlike())
        .map(|t| if t.kind == Kind::Number { t.text } else { t.stem })
        .collect();
    let acronym = (words.len() >= 3)
        .then(|| words.iter().filter_map(|w| w.chars().next()).filter(|c| c.is_alphabetic()).collect::<String>())
        .filter(|a| a.chars().count() >= 3);
    NameKey { words, acronym }
}

/// The form of a prompt token compared with name words.
fn key_of(t: &Token) -> Option<&str> {
    match t.kind {
        Kind::Number => Some(&t.text),
        Kind::Word => Some(&t.stem),
        _ => None,
    }
}

/// Words too common to identify a scene by themselves.
#[rustfmt::skip]
const PARTIAL_STOPWORDS: &[&str] = &[
    "the", "and", "to", "of", "for", "in", "on", "with", "our", "my", "your", "scene", "slide", "video", "part",
    "section", "page", "new", "one", "a", "an", "it", "is", "at", "by", "or", "this", "that", "all", "from", "up",
    "out", "us", "we", "you", "me", "make", "add", "more", "less", "not", "no", "how", "what", "why", "who", "vs",
];

/// Finds every scene mention in the prompt. `images` is the number of
/// attached images: with two or more, "the second one" may mean an image.
pub(crate) fn find_mentions(tokens: &[Token], scenes: &[Scene], images: usize) -> Mentions {
    let mut m = Mentions { list: Vec::new(), consumed: vec![false; tokens.len()] };
    let keys: Vec<NameKey> = scenes.iter().map(|s| name_key(&s.name)).collect();
    full_names(tokens, &keys, &mut m);
    let image_ordinals = images >= 2 && mentions_image_ordinal(tokens);
    ordinals(tokens, scenes.len(), image_ordinals, &mut m);
    status_and_all(tokens, scenes, &mut m);
    pronouns(tokens, images, &mut m);
    partial_names(tokens, &keys, &mut m);
    unresolved_names(tokens, &mut m);
    m.list.sort_by_key(|x| x.start);
    mark_references(tokens, &mut m.list);
    m
}

fn covered(m: &Mentions, i: usize) -> bool {
    m.consumed.get(i).copied().unwrap_or(false) || m.list.iter().any(|x| x.start <= i && i < x.end)
}

/// Whole names, exact or with one typo per long word, longest first.
fn full_names(tokens: &[Token], keys: &[NameKey], m: &mut Mentions) {
    // Whether each token may be a typo: long enough and not a word we know.
    let typo_candidate: Vec<bool> =
        tokens.iter().map(|t| key_of(t).is_some_and(|k| k.chars().count() >= 5 && !is_known_word(k))).collect();
    // (start, len, scene, fuzzy)
    let mut candidates: Vec<(usize, usize, usize, bool)> = Vec::new();
    for start in 0..tokens.len() {
        if !tokens[start].is_wordlike() {
            continue;
        }
        for (scene, key) in keys.iter().enumerate() {
            if let Some(acronym) = &key.acronym
                && tokens[start].kind == Kind::Word
                && tokens[start].stem == *acronym
            {
                candidates.push((start, 0, scene, false));
            }
            let n = key.words.len();
            if n == 0 || start + n > tokens.len() {
                continue;
            }
            let mut fuzzy = false;
            let all = key.words.iter().enumerate().all(|(k, word)| {
                let Some(got) = key_of(&tokens[start + k]) else { return false };
                if got == word {
                    return true;
                }
                // Only unknown words may be typos: "into" is not "intro".
                let close =
                    typo_candidate[start + k] && word.chars().count() >= 5 && within_edit_distance(got, word, 1);
                fuzzy |= close;
                close
            });
            if all {
                candidates.push((start, n, scene, fuzzy));
            }
        }
    }
    // Longest, then exact, then earliest wins a span. An acronym ("cta") is
    // stored with length 0 so that it ranks as one word but is not taken for
    // an element-named scene below.
    let span = |len: usize| len.max(1);
    candidates.sort_by(|a, b| span(b.1).cmp(&span(a.1)).then(a.3.cmp(&b.3)).then(a.0.cmp(&b.0)));
    let mut taken: Vec<(usize, usize, bool, Vec<usize>)> = Vec::new();
    let mut acronyms: Vec<usize> = Vec::new();
    for (start, len, scene, fuzzy) in candidates {
        if len == 0 {
            acronyms.push(start);
        }
        let len = span(len);
        if let Some(same) = taken.iter_mut().find(|t| t.0 == start && t.1 == len && t.2 == fuzzy) {
            if !same.3.contains(&scene) {
                same.3.push(scene);
            }
            continue;
        }
        if taken.iter().any(|t| start < t.0 + t.1 && t.0 < start + len) {
            continue;
        }
        taken.push((start, len, fuzzy, vec![scene]));
    }
    for (start, len, fuzzy, mut scenes) in taken {
        scenes.sort_unstable();
        for c in m.consumed.iter_mut().skip(start).take(len) {
            *c = true;
        }
        // A one-word name that is also an element ("Logo") is weaker evidence.
        let element_name = len == 1
            && !acronyms.contains(&start)
            && tokens.get(start).is_some_and(|t| is(t.stem.as_str(), list::ELEMENT_NOUNS));
        let how = if fuzzy {
            How::Fuzzy
        } else if element_name {
            How::ElementName
        } else {
            How::Name
        };
        m.list.push(Mention {
            start,
            end: start + len,
            refers: Refers::Scenes(scenes, how),
            reference: false,
            excluded: false,
        });
    }
}

/// Words the rules know, which are therefore not typos of a scene name.
fn is_known_word(w: &str) -> bool {
    #[rustfmt::skip]
    const COMMON: &[&str] = &[
        "about", "after", "again", "other", "these", "those", "there", "their", "where", "which", "while", "would",
        "could", "should", "scene", "slide", "video", "image", "today", "first", "second", "third", "later",
        "under", "above", "below", "every", "thing", "things", "still", "maybe", "right", "shorter", "longer",
        "bigger", "smaller", "darker", "lighter", "brighter", "faster", "slower", "instead", "before", "between",
        "inside", "intros", "outros", "doesn't", "isn't", "won't", "can't", "please", "thanks", "start", "entire",
        "whole", "color", "colour", "seconds", "minute", "minutes", "little", "really", "everything", "something",
    ];
    is(w, u32::MAX) || verb_class(w).is_some() || COMMON.contains(&w)
}

fn word(tokens: &[Token], i: usize) -> Option<&str> {
    tokens.get(i).filter(|t| t.kind == Kind::Word).map(|t| t.text.as_str())
}

fn is_scene_noun(tokens: &[Token], i: usize) -> bool {
    tokens.get(i).is_some_and(|t| t.kind == Kind::Word && (is(t.text.as_str(), list::SCENE_NOUNS) || t.stem == "scene"))
}

fn is_time_unit(w: &str) -> bool {
    matches!(
        w,
        "s" | "sec" | "secs" | "second" | "seconds" | "min" | "mins" | "minute" | "minutes" | "ms" | "milliseconds"
    )
}

/// Whether the prompt says "first image", "image 2", "the second picture".
fn mentions_image_ordinal(tokens: &[Token]) -> bool {
    tokens.windows(2).any(|w| {
        let noun0 = is(w[0].text.as_str(), list::IMAGE_NOUNS);
        let noun1 = is(w[1].text.as_str(), list::IMAGE_NOUNS);
        (ordinal_value(&w[0].text).is_some() || w[0].is_any(&["last", "other"])) && noun1
            || noun0 && w[1].kind == Kind::Number
    })
}

/// A number after "scene": "2", "#2", "two".
fn scene_number(tokens: &[Token], i: usize) -> Option<usize> {
    let t = tokens.get(i)?;
    if let Some(n) = t.number {
        return (n.fract() == 0.0 && n >= 1.0).then_some(n as usize);
    }
    if t.kind != Kind::Word {
        return None;
    }
    // "scene 2's logo".
    if let Some(d) = t.text.strip_suffix("'s").filter(|d| d.chars().all(|c| c.is_ascii_digit())) {
        return d.parse().ok().filter(|&n: &usize| n > 0);
    }
    if let Some(d) = t.text.strip_prefix('#') {
        return d.parse().ok().filter(|&n: &usize| n > 0);
    }
    word_number(&t.text).filter(|n| *n >= 1.0).map(|n| n as usize).or_else(|| ordinal_value(&t.text))
}

/// Words after "the last" that end the noun phrase ("delete the last, then ...").
#[rustfmt::skip]
const ORDINAL_BOUNDARY: &[&str] = &[
    "and", "to", "then", "with", "so", "please", "too", "entirely", "completely", "for", "into", "from", "again",
    "now", "a", "an", "the", "is", "was", "should", "shorter", "longer", "feel", "look", "more", "less", "by", "in",
    "on", "as", "at", "blue", "red", "green", "black", "white",
];

fn push_positions(m: &mut Mentions, start: usize, end: usize, positions: &[usize], scene_count: usize) {
    if let Some(&bad) = positions.iter().find(|&&p| p == 0 || p > scene_count) {
        m.list.push(Mention {
            start,
            end,
            refers: Refers::Unresolved(Unresolved::OutOfRange(bad)),
            reference: false,
            excluded: false,
        });
    } else {
        let scenes = positions.iter().map(|p| p - 1).collect();
        m.list.push(Mention {
            start,
            end,
            refers: Refers::Scenes(scenes, How::Ordinal),
            reference: false,
            excluded: false,
        });
    }
    for c in m.consumed.iter_mut().skip(start).take(end - start) {
        *c = true;
    }
}

/// "scene 2", "scenes 2 and 3", "the second scene", "2nd", "last", "the last two scenes".
fn ordinals(tokens: &[Token], scene_count: usize, image_ordinals: bool, m: &mut Mentions) {
    let n = scene_count;
    let mut i = 0;
    while i < tokens.len() {
        if covered(m, i) {
            i += 1;
            continue;
        }
        // "scene 2", "scene #2", "scene number 2", "scenes 2 and 3", "scenes 2 to 4".
        if is_scene_noun(tokens, i) {
            let plural = tokens[i].text.ends_with('s');
            let mut j = i + 1;
            if word(tokens, j).is_some_and(|w| ["number", "no", "num", "nr"].contains(&w)) {
                j += 1;
                if tokens.get(j).is_some_and(|t| t.is_punct('.')) {
                    j += 1;
                }
            }
            // "every scene 4 seconds": a number before a unit is a length, not a position.
            let before_unit = word(tokens, j + 1).is_some_and(is_time_unit);
            if let Some(first) = scene_number(tokens, j).filter(|_| !before_unit) {
                let mut positions = vec![first];
                j += 1;
                loop {
                    let sep = tokens.get(j);
                    let is_list_sep = sep.is_some_and(|t| t.is_punct(',') || t.is_any(&["and", "&", "or"]));
                    let is_range = plural && sep.is_some_and(|t| t.is_any(&["to", "through", "thru"]));
                    if (is_list_sep || is_range)
                        && let Some(next) = scene_number(tokens, j + 1)
                        && tokens
                            .get(j + 1)
                            .is_some_and(|t| t.kind == Kind::Number || t.text.starts_with('#') || plural)
                    {
                        if is_range && next > *positions.last().unwrap_or(&next) {
                            let from = positions.last().copied().unwrap_or(next);
                            positions.extend(from + 1..=next.min(from + 50));
                        } else {
                            positions.push(next);
                        }
                        j += 2;
                        continue;
                    }
                    if plural
                        && sep.is_some_and(|t| t.kind == Kind::Number)
                        && let Some(next) = scene_number(tokens, j)
                    {
                        positions.push(next);
                        j += 1;
                        continue;
                    }
                    break;
                }
                push_positions(m, i, j, &positions, n);
                i = j;
                continue;
            }
        }
        let Some(w) = word(tokens, i) else {
            i += 1;
            continue;
        };
        let prev_the = i > 0 && word(tokens, i - 1).is_some_and(|p| ["the", "that", "this", "my", "our"].contains(&p));
        // Compound forms: "second to last", "next to last", "last but one", "second last".
        let (position, len) = if (w == "second" || w == "next")
            && word(tokens, i + 1) == Some("to")
            && word(tokens, i + 2) == Some("last")
        {
            (n.checked_sub(1), 3)
        } else if w == "second" && word(tokens, i + 1) == Some("last") {
            (n.checked_sub(1), 2)
        } else if w == "last" && word(tokens, i + 1) == Some("but") && word(tokens, i + 2) == Some("one") {
            (n.checked_sub(1), 3)
        } else if w == "penultimate" {
            (n.checked_sub(1), 1)
        } else if w == "last" || w == "final" || w == "closing" || w == "ending" {
            (Some(n), 1)
        } else if w == "opening" {
            (Some(1), 1)
        } else if let Some(v) = ordinal_value(w) {
            (Some(v), 1)
        } else {
            i += 1;
            continue;
        };
        let after = i + len;
        // "the last two scenes", "the first 3 slides".
        if (w == "first" || w == "last")
            && let Some(count) = scene_number(tokens, after).filter(|c| (2..=50).contains(c))
            && tokens.get(after).is_some_and(|t| t.kind == Kind::Number || word_number(&t.text).is_some())
            && (is_scene_noun(tokens, after + 1)
                || (prev_the && tokens.get(after + 1).is_none_or(|t| t.kind == Kind::Punct)))
        {
            let end = if is_scene_noun(tokens, after + 1) { after + 2 } else { after + 1 };
            let positions: Vec<usize> =
                if w == "first" { (1..=count).collect() } else { (n.saturating_sub(count) + 1..=n).collect() };
            push_positions(m, i, end, &positions, n);
            i = end;
            continue;
        }
        let one_unit = word(tokens, after) == Some("one") && word(tokens, after + 1).is_some_and(is_time_unit);
        let followed_by_noun = is_scene_noun(tokens, after)
            || (word(tokens, after).is_some_and(|x| x == "one" || x == "ones") && !one_unit);
        let image_ordinal = image_ordinals && word(tokens, after) == Some("one");
        let next_is_image = word(tokens, after).is_some_and(|x| is(x, list::IMAGE_NOUNS));
        let strict = matches!(w, "opening" | "closing" | "ending");
        let at_boundary = prev_the
            && !strict
            && tokens.get(after).is_none_or(|t| t.kind == Kind::Punct || t.kind == Kind::Quote || ORDINAL_BOUNDARY.contains(&t.text.as_str()))
            // "make the intro last 5 seconds": "last" is a verb there.
            && !(w == "last" && tokens.get(after).is_some_and(|t| t.kind == Kind::Number));
        let ending_noun = w == "ending" && prev_the && !followed_by_noun;
        if image_ordinal || next_is_image || !(followed_by_noun || at_boundary || ending_noun) {
            i += 1;
            continue;
        }
        let end = if followed_by_noun { after + 1 } else { after };
        match position {
            Some(p) => push_positions(m, i, end, &[p], n),
            None => push_positions(m, i, end, &[0], n),
        }
        i = end;
    }
}

/// "the broken scene(s)", "every scene", "all scenes", "all of them", "everything".
fn status_and_all(tokens: &[Token], scenes: &[Scene], m: &mut Mentions) {
    for i in 0..tokens.len() {
        if covered(m, i) {
            continue;
        }
        let Some(w) = word(tokens, i) else { continue };
        if ["broken", "failing", "erroring", "crashing", "crashed", "failed"].contains(&w)
            && (is_scene_noun(tokens, i + 1) || word(tokens, i + 1).is_some_and(|x| x == "one" || x == "ones"))
        {
            let broken: Vec<usize> =
                scenes.iter().enumerate().filter(|(_, s)| s.status == SceneStatus::Broken).map(|(k, _)| k).collect();
            let refers = if broken.is_empty() {
                Refers::Unresolved(Unresolved::NoneBroken)
            } else {
                Refers::Scenes(broken, How::Status)
            };
            m.list.push(Mention { start: i, end: i + 2, refers, reference: false, excluded: false });
            continue;
        }
        let mut end = None;
        if w == "every" || w == "each" {
            if is_scene_noun(tokens, i + 1) {
                end = Some(i + 2);
            } else if word(tokens, i + 1) == Some("single") && is_scene_noun(tokens, i + 2) {
                end = Some(i + 3);
            }
        } else if w == "all" {
            let mut j = i + 1;
            if word(tokens, j) == Some("of") {
                j += 1;
            }
            if word(tokens, j).is_some_and(|x| ["the", "my", "our", "these"].contains(&x)) {
                j += 1;
            }
            if is_scene_noun(tokens, j) {
                end = Some(j + 1);
            } else if word(tokens, i + 1) == Some("of") && word(tokens, i + 2) == Some("them") {
                end = Some(i + 3);
            }
        } else if w == "them" && word(tokens, i + 1) == Some("all") {
            end = Some(i + 2);
        } else if w == "everything"
            // "center everything in the quote scene": everything inside one scene.
            && !word(tokens, i + 1).is_some_and(|x| ["in", "on", "inside", "within", "of", "from"].contains(&x))
        {
            end = Some(i + 1);
        } else if (w == "whole" || w == "entire")
            && word(tokens, i + 1).is_some_and(|x| ["video", "project", "presentation", "deck"].contains(&x))
        {
            end = Some(i + 2);
        }
        if let Some(end) = end
            && !scenes.is_empty()
        {
            m.list.push(Mention {
                start: i,
                end,
                refers: Refers::Scenes((0..scenes.len()).collect(), How::All),
                reference: false,
                excluded: false,
            });
        }
    }
}

/// "it", "its", "this scene", "that one", "the scene".
fn pronouns(tokens: &[Token], images: usize, m: &mut Mentions) {
    for i in 0..tokens.len() {
        if covered(m, i) {
            continue;
        }
        let Some(w) = word(tokens, i) else { continue };
        let end = match w {
            "it" | "its" | "it's" | "itself" | "them" => Some(i + 1),
            "this" | "that" | "the" | "same" | "current"
                if is_scene_noun(tokens, i + 1) && !tokens[i + 1].text.ends_with('s')
                    || tokens.get(i + 1).is_some_and(|t| t.text == "scene's") =>
            {
                Some(i + 2)
            }
            "this" | "that" if word(tokens, i + 1) == Some("one") && images == 0 => Some(i + 2),
            // "delete this", "fix that": a bare demonstrative closing the request.
            "this" | "that"
                if images == 0
                    && i > 0
                    && tokens.get(i + 1).is_none_or(|t| {
                        t.kind == Kind::Punct || t.is_any(&["and", "then", "please", "too", "now"])
                    }) =>
            {
                Some(i + 1)
            }
            _ => None,
        };
        if let Some(end) = end {
            // "the scene about pricing", "this scene 'Intro'" are handled elsewhere; a
            // pronoun directly followed by a name is not a pronoun.
            if m.list.iter().any(|x| x.start == end) {
                continue;
            }
            m.list.push(Mention { start: i, end, refers: Refers::Pronoun, reference: false, excluded: false });
        }
    }
}

/// One distinctive word of a multi-word name ("pricing" → "Pricing Table"),
/// or a one-word name with one typo.
fn partial_names(tokens: &[Token], keys: &[NameKey], m: &mut Mentions) {
    let mut found: Vec<Mention> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        if t.kind != Kind::Word || covered(m, i) {
            continue;
        }
        let stem = t.stem.as_str();
        if stem.chars().count() < 3 || PARTIAL_STOPWORDS.contains(&stem) {
            continue;
        }
        let mut scenes = Vec::new();
        for (k, key) in keys.iter().enumerate() {
            if key.words.len() >= 2 && key.words.iter().any(|w| w == stem) {
                scenes.push(k);
            }
        }
        if scenes.is_empty() {
            continue;
        }
        let how = if is(stem, list::ELEMENT_NOUNS) { How::WeakPartial } else { How::Partial };
        // "customer testimonials" matching only part of one name: merge adjacent words.
        if let Some(last) = found.last_mut()
            && last.end == i
            && matches!(&last.refers, Refers::Scenes(s, _) if *s == scenes)
        {
            last.end = i + 1;
            if how == How::Partial {
                last.refers = Refers::Scenes(scenes, How::Partial);
            }
            continue;
        }
        found.push(Mention {
            start: i,
            end: i + 1,
            refers: Refers::Scenes(scenes, how),
            reference: false,
            excluded: false,
        });
    }
    m.list.extend(found);
}

/// "the pricing scene" or "the intro" when no scene has that name.
fn unresolved_names(tokens: &[Token], m: &mut Mentions) {
    let mut found = Vec::new();
    for i in 1..tokens.len() {
        if covered(m, i) || word(tokens, i - 1) != Some("the") {
            continue;
        }
        let Some(w) = word(tokens, i) else { continue };
        if NON_NAME_MODIFIERS.contains(&w) || ordinal_value(w).is_some() {
            continue;
        }
        // "the pricing scene", "the customer stories slide".
        let named_before_noun = (1..=2).find(|&k| is_scene_noun(tokens, i + k));
        let names_before =
            named_before_noun.is_some_and(|k| (i..i + k).all(|j| !covered(m, j) && word(tokens, j).is_some()));
        if names_before || SCENE_KIND_NAMES.contains(&w) {
            let end = named_before_noun.map(|k| i + k + 1).unwrap_or(i + 1);
            let what = tokens[i..named_before_noun.map(|k| i + k).unwrap_or(i + 1)]
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            if (i..end).any(|j| covered(m, j)) {
                continue;
            }
            found.push(Mention {
                start: i,
                end,
                refers: Refers::Unresolved(Unresolved::Named(what)),
                reference: false,
                excluded: false,
            });
        }
    }
    m.list.extend(found);
}

/// Marks "like the intro" / "as the outro" mentions as references.
fn mark_references(tokens: &[Token], list: &mut [Mention]) {
    for mention in list.iter_mut() {
        // "as the outro background": the outro owns the element, it is the target.
        let owns_element = tokens.get(mention.end).is_some_and(|t| is(t.stem.as_str(), list::ELEMENT_NOUNS));
        if owns_element {
            continue;
        }
        let mut j = mention.start;
        while j > 0 {
            j -= 1;
            let Some(t) = tokens.get(j) else { break };
            if t.kind == Kind::Word && DETERMINERS.contains(&t.text.as_str()) {
                continue;
            }
            let marker = t.kind == Kind::Word && REFERENCE_MARKERS.contains(&t.text.as_str());
            // "match the outro to this": "match" is the verb and the outro its object.
            let is_verb = j == 0
                || tokens.get(j - 1).is_some_and(|p| {
                    p.kind == Kind::Punct
                        || p.is_any(&["please", "you", "and", "then", "to", "just", "can", "could", "i", "we"])
                });
            mention.reference = marker && !(is_verb && ["match", "mirror", "copy"].contains(&t.text.as_str()));
            // "every scene except the intro", "all but the outro", "other than scene 2".
            let prev =
                j.checked_sub(1).and_then(|p| tokens.get(p)).filter(|p| p.kind == Kind::Word).map(|p| p.text.as_str());
            mention.excluded = t.is_any(&["except", "excluding", "besides", "minus"])
                || (t.is("than") && prev == Some("other"))
                || (t.is("from") && matches!(prev, Some("apart" | "aside")))
                || (t.is("but") && matches!(prev, Some("all" | "scenes" | "slides" | "everything" | "one")));
            mention.reference |= mention.excluded;
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::lexer::tokenize;

    use crate::model::testing::scenes;

    fn refers(prompt: &str, names: &[&str]) -> Vec<Refers> {
        let t = tokenize(prompt);
        find_mentions(&t, &scenes(names), 0).list.into_iter().filter(|m| !m.reference).map(|m| m.refers).collect()
    }

    const ABC: &[&str] = &["Intro", "Product Demo", "Outro"];

    #[test]
    fn ordinal_forms() {
        let s = |v: Vec<usize>| vec![Refers::Scenes(v, How::Ordinal)];
        assert_eq!(refers("remove scene 2", ABC), s(vec![1]));
        assert_eq!(refers("remove scene #2", ABC), s(vec![1]));
        assert_eq!(refers("remove scene two", ABC), s(vec![1]));
        assert_eq!(refers("the second scene", ABC), s(vec![1]));
        assert_eq!(refers("the 2nd slide", ABC), s(vec![1]));
        assert_eq!(refers("delete the last", ABC), s(vec![2]));
        assert_eq!(refers("the final scene", ABC), s(vec![2]));
        assert_eq!(refers("the second-to-last scene", ABC), s(vec![1]));
        assert_eq!(refers("the penultimate scene", ABC), s(vec![1]));
        assert_eq!(refers("the first one", ABC), s(vec![0]));
        assert_eq!(refers("the opening scene", ABC), s(vec![0]));
        assert_eq!(refers("scenes 2 and 3", ABC), s(vec![1, 2]));
        assert_eq!(refers("the last two scenes", ABC), s(vec![1, 2]));
        assert_eq!(refers("delete scene 7", ABC), vec![Refers::Unresolved(Unresolved::OutOfRange(7))]);
    }

    #[test]
    fn ordinal_lookalikes_are_not_ordinals() {
        assert!(refers("make the intro last 5 seconds", ABC).iter().all(|r| *r == Refers::Scenes(vec![0], How::Name)));
        assert!(refers("add a second quote", ABC).is_empty());
        assert!(refers("first, add a scene", ABC).is_empty());
        assert!(refers("use the first image", ABC).is_empty());
    }

    #[test]
    fn names_partial_plural_acronym_typo() {
        assert_eq!(refers("make the intro blue", ABC), vec![Refers::Scenes(vec![0], How::Name)]);
        assert_eq!(refers("make the INTRO blue", ABC), vec![Refers::Scenes(vec![0], How::Name)]);
        assert_eq!(refers("the demo", ABC), vec![Refers::Scenes(vec![1], How::Partial)]);
        let b = &["Hook", "Pricing Table", "Testimonials", "Call To Action"];
        assert_eq!(refers("the pricing scene", b), vec![Refers::Scenes(vec![1], How::Partial)]);
        assert_eq!(refers("the testimonial", b), vec![Refers::Scenes(vec![2], How::Name)]);
        assert_eq!(refers("the cta", b), vec![Refers::Scenes(vec![3], How::Name)]);
        assert_eq!(refers("the call to action", b), vec![Refers::Scenes(vec![3], How::Name)]);
        assert_eq!(refers("the testimonals", b), vec![Refers::Scenes(vec![2], How::Fuzzy)]);
        assert_eq!(refers("the title", &["Title Card", "Outro"]), vec![Refers::Scenes(vec![0], How::WeakPartial)]);
    }

    #[test]
    fn names_beat_ordinals_they_contain() {
        let d = &["Top 10 Tips", "First Look", "Step 2", "Closing Remarks"];
        assert_eq!(refers("delete the first look scene", d), vec![Refers::Scenes(vec![1], How::Name)]);
        assert_eq!(refers("delete the first scene", d), vec![Refers::Scenes(vec![0], How::Ordinal)]);
        assert_eq!(refers("remove step 2", d), vec![Refers::Scenes(vec![2], How::Name)]);
        assert_eq!(refers("make top 10 tips shorter", d), vec![Refers::Scenes(vec![0], How::Name)]);
    }

    #[test]
    fn status_all_pronouns_unresolved() {
        let mut s = scenes(ABC);
        s[1].status = SceneStatus::Broken;
        let t = tokenize("fix the broken scene");
        assert_eq!(find_mentions(&t, &s, 0).list[0].refers, Refers::Scenes(vec![1], How::Status));
        assert_eq!(refers("fix the broken scene", ABC), vec![Refers::Unresolved(Unresolved::NoneBroken)]);
        assert_eq!(refers("make every scene blue", ABC), vec![Refers::Scenes(vec![0, 1, 2], How::All)]);
        assert_eq!(refers("delete it", ABC), vec![Refers::Pronoun]);
        assert_eq!(refers("make this scene blue", ABC), vec![Refers::Pronoun]);
        assert_eq!(
            refers("delete the pricing scene", ABC),
            vec![Refers::Unresolved(Unresolved::Named("pricing".into()))]
        );
        assert_eq!(refers("delete the hook", ABC), vec![Refers::Unresolved(Unresolved::Named("hook".into()))]);
    }

    #[test]
    fn references_are_marked() {
        let t = tokenize("make the outro look like the intro");
        let m = find_mentions(&t, &scenes(ABC), 0).list;
        assert_eq!(m.len(), 2);
        assert!(!m[0].reference);
        assert!(m[1].reference);
        let t = tokenize("use the second one as the outro background");
        let m = find_mentions(&t, &scenes(ABC), 2).list;
        assert!(m.iter().any(|x| x.refers == Refers::Scenes(vec![2], How::Name) && !x.reference));
    }
}
