//! A prompt's requests: splitting it into clauses ("add an intro and then
//! make the outro shorter" is two), what each clause asks for, how invasive
//! an edit is, and the attributes it names.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::decide::EditComplexity;

use crate::text::duration::{Amount, DurationExpr, format_seconds};
use crate::text::lexer::{Kind, Token, ordinal_value, within_edit_distance, word_number};
use crate::text::lexicon::*;

use super::target::{How, Mention, Refers};

/// What a clause asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Intent {
    /// A new scene.
    Add,
    /// A copy of an existing scene.
    Duplicate,
    /// Change a scene.
    Edit,
    /// Delete a scene.
    Delete,
    /// Repair a scene that does not render.
    Fix,
    /// Change a scene's length.
    Duration,
    /// Look at the attached images.
    Analyze,
    /// Change the order of scenes, which no tool does.
    Reorder,
}

/// What a clause asks for, and how sure the rules are.
#[derive(Debug, Clone)]
pub(crate) struct Reading {
    /// The request, if any.
    pub intent: Option<Intent>,
    /// How invasive, for edits.
    pub complexity: EditComplexity,
    /// No complexity cue was found (the default was used).
    pub complexity_guessed: bool,
    /// Read from a statement ("the outro is broken") rather than a verb.
    pub from_state: bool,
    /// The verb was recognised despite a typo.
    pub typo: bool,
    /// Durations that set the scene's length (not element timings).
    pub lengths: Vec<DurationExpr>,
    /// Durations of element animations ("fade in over 2 seconds").
    pub timings: Vec<DurationExpr>,
    /// Starts of mentions that name an element here, not a scene ("delete
    /// the quote from the stats scene" in a project with a "Quote" scene).
    pub element_mentions: Vec<usize>,
}

fn is_consumed(consumed: &[bool], i: usize) -> bool {
    consumed.get(i).copied().unwrap_or(false)
}

fn word(tokens: &[Token], i: usize) -> Option<&str> {
    tokens.get(i).filter(|t| t.kind == Kind::Word).map(|t| t.text.as_str())
}

/// Words that start a verb's object ("delete *the* intro").
#[rustfmt::skip]
const OBJECT_STARTERS: &[&str] = &[
    "the", "a", "an", "it", "its", "this", "that", "these", "those", "them", "all", "every", "each", "everything",
    "our", "my", "your", "scene", "scenes", "slide", "slides", "some", "another", "one", "both", "any", "rid", "up",
    "out", "down", "off", "in", "me",
];

/// The verb class at `i` and the index after the verb (multi-word verbs
/// such as "get rid of" span several tokens).
fn verb_at(tokens: &[Token], i: usize) -> Option<(VerbClass, usize)> {
    let w = word(tokens, i)?;
    let next = word(tokens, i + 1);
    match (w, next) {
        ("get", Some("rid")) => {
            let end = if word(tokens, i + 2) == Some("of") { i + 3 } else { i + 2 };
            return Some((VerbClass::Delete, end));
        }
        ("take", Some("out" | "away" | "off")) => return Some((VerbClass::Delete, i + 2)),
        // "take the logo out of the intro": the particle may follow the object.
        ("take", _) => {
            let particle = (i + 2..i + 8)
                .take_while(|&k| tokens.get(k).is_some_and(|t| t.kind != Kind::Punct))
                .any(|k| word(tokens, k).is_some_and(|w| ["out", "away", "off"].contains(&w)));
            return particle.then_some((VerbClass::Delete, i + 1));
        }
        ("speed", Some("up")) | ("slow", Some("down")) => return Some((VerbClass::Duration, i + 2)),
        ("tighten", _) => return Some((VerbClass::Duration, i + if next == Some("up") { 2 } else { 1 })),
        // "try a darker palette" (but "try to delete" is just politeness).
        ("try", Some("a" | "an" | "some" | "the" | "using" | "making" | "giving" | "adding")) => {
            return Some((VerbClass::Edit, i + 1));
        }
        ("clean" | "tone" | "spice" | "jazz" | "punch" | "mix" | "switch" | "liven" | "tidy", Some("up" | "down")) => {
            return Some((VerbClass::Edit, i + 2));
        }
        // "make the intro last 5 seconds": a verb only before an amount.
        ("last", _) => {
            let prev = i.checked_sub(1).and_then(|p| word(tokens, p));
            let amount_follows = tokens.get(i + 1).is_some_and(|t| {
                t.kind == Kind::Number
                    || t.text.starts_with(|c: char| c.is_ascii_digit())
                    || t.is_any(&[
                        "a", "an", "half", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                        "ten", "twenty", "thirty", "for", "about", "around", "exactly", "only", "just", "at", "no",
                    ])
            });
            if amount_follows && !prev.is_some_and(|p| ["the", "at", "very", "and"].contains(&p)) {
                return Some((VerbClass::Duration, i + 1));
            }
            return None;
        }
        _ => {}
    }
    verb_class(w).map(|c| (c, i + 1))
}

/// A typo'd verb ("delet", "chnage"), checked only where a verb is expected.
fn typo_verb(tokens: &[Token], i: usize) -> Option<(VerbClass, usize)> {
    let w = word(tokens, i)?;
    // Known words are not typos ("later" is not "alter").
    if w.chars().count() < 4 || verb_class(w).is_some() || is(w, u32::MAX) {
        return None;
    }
    TYPO_VERBS.iter().find(|v| within_edit_distance(w, v, 1)).and_then(|v| verb_class(v)).map(|c| (c, i + 1))
}

/// Whether a new request starts at `j` ("... and *delete* scene 3").
fn starts_request(tokens: &[Token], j: usize, end: usize, consumed: &[bool]) -> bool {
    let mut k = j;
    while k < end && k < j + 6 {
        let Some(t) = tokens.get(k) else { return false };
        if is_consumed(consumed, k) {
            return false;
        }
        if t.is_any(NEGATIONS) || (t.is("do") && word(tokens, k + 1) == Some("not")) {
            return true;
        }
        if let Some((_, after)) = verb_at(tokens, k).or_else(|| typo_verb(tokens, k)) {
            let object = tokens.get(after);
            return object.is_some_and(|o| {
                o.kind == Kind::Number
                    || o.kind == Kind::Quote
                    || o.is_any(OBJECT_STARTERS)
                    || is_consumed(consumed, after)
                    || o.text.starts_with(|c: char| c.is_ascii_digit())
            }) || word(tokens, k) == Some("last");
        }
        if t.kind == Kind::Word && is(t.text.as_str(), list::FILLERS) {
            k += 1;
            continue;
        }
        return false;
    }
    false
}

/// Splits the prompt into clauses, each one request at most.
pub(crate) fn split(tokens: &[Token], consumed: &[bool]) -> Vec<Range<usize>> {
    let mut clauses = Vec::new();
    let mut start = 0;
    let n = tokens.len();
    let mut i = 0;
    while i < n {
        let t = &tokens[i];
        if is_consumed(consumed, i) {
            i += 1;
            continue;
        }
        let hard_stop = t.kind == Kind::Punct && matches!(t.text.as_str(), "." | ";" | "!" | "?");
        let soft = (t.kind == Kind::Punct && matches!(t.text.as_str(), "," | "-" | "("))
            || t.is_any(&["and", "&", "plus", "but", "also", "while", "or"]);
        if hard_stop {
            clauses.push(start..i);
            start = i + 1;
        } else if t.is_any(&["then", "afterwards", "afterward"]) && i > start {
            clauses.push(start..i);
            start = i;
        } else if soft && i > start && starts_request(tokens, i + 1, n, consumed) {
            clauses.push(start..i);
            start = i + 1;
        }
        i += 1;
    }
    clauses.push(start..n);
    clauses.retain(|r| r.start < r.end && tokens[r.clone()].iter().any(|t| t.kind != Kind::Punct));
    clauses
}

/// Words after which a verb-looking word is a noun ("the color", "its style").
#[rustfmt::skip]
const NOUN_DETERMINERS: &[&str] = &[
    "the", "a", "an", "this", "its", "my", "our", "your", "their", "his", "her", "these", "those", "some", "any",
    "each", "every", "which", "what", "whose",
];

/// Words after which a verb in a question is a request ("can you add", "what if we cut").
const QUESTION_VERB_LEADS: &[&str] =
    &["you", "we", "i", "to", "can", "could", "should", "would", "please", "let's", "lets", "and", "then", "just", "u"];

/// Words that end a verb's object phrase.
#[rustfmt::skip]
const OBJECT_END: &[&str] = &[
    "to", "in", "on", "into", "onto", "inside", "within", "from", "of", "for", "at", "off", "with", "about",
    "showing", "that", "which", "where", "between", "after", "before", "like", "as", "so", "by", "using", "based",
    "explaining", "featuring", "introducing", "called", "named", "instead", "and",
];

/// Facts about a verb's object.
struct Object {
    /// An element noun appears before any scene mention ("remove *the logo* from the hook").
    element_first: bool,
    /// A scene mention (of any kind) is in the object.
    mentions_scene: bool,
    /// A new-scene noun ("scene", "intro", "slide").
    new_scene_noun: bool,
    /// "new", "another", "extra", "additional".
    new_marker: bool,
    /// Words in `EDIT_FIX_NOUNS` ("typo", "alignment").
    edit_fix_noun: bool,
    /// "duration", "length", "runtime".
    length_noun: bool,
    /// Mentions of element-named scenes that mean the element here.
    element_mentions: Vec<usize>,
}

fn object_of(tokens: &[Token], from: usize, end: usize, consumed: &[bool], mentions: &[&Mention]) -> Object {
    let mut o = Object {
        element_first: false,
        mentions_scene: false,
        new_scene_noun: false,
        new_marker: false,
        edit_fix_noun: false,
        length_noun: false,
        element_mentions: Vec::new(),
    };
    let mut k = from;
    while k < end {
        if let Some(m) = mentions.iter().find(|m| m.start <= k && k < m.end) {
            if k > from && tokens.get(k).is_some_and(|t| t.is_any(OBJECT_END)) {
                break;
            }
            // A scene named like an element ("Quote") followed by another scene
            // that locates it ("from the stats scene") is the element.
            // "remove the second testimonial": an ordinal that is not a scene
            // position makes the name a kind of element inside that scene.
            let counted = m.start > 0
                && tokens.get(m.start - 1).is_some_and(|p| {
                    !is_consumed(consumed, m.start - 1)
                        && (ordinal_value(&p.text).is_some() || p.is_any(&["last", "other", "each"]))
                });
            if counted && matches!(m.refers, Refers::Scenes(..)) {
                if !o.mentions_scene {
                    o.element_first = true;
                }
                k = m.end.max(k + 1);
                continue;
            }
            let element_named = matches!(m.refers, Refers::Scenes(_, How::ElementName));
            if element_named && mentions.iter().any(|other| other.start >= m.end && is_locative(tokens, other)) {
                if !o.mentions_scene {
                    o.element_first = true;
                }
                o.element_mentions.push(m.start);
                k = m.end.max(k + 1);
                continue;
            }
            // "the agent's phone number", "the intro title": the scene owns the
            // element the verb acts on.
            let owns_element = (m.end..(m.end + 2).min(end)).any(|j| {
                tokens.get(j).is_some_and(|t| t.kind == Kind::Word && is(t.stem.as_str(), list::ELEMENT_NOUNS))
            });
            if owns_element && !o.mentions_scene && k == first_content_of(tokens, from, end) {
                o.element_first = true;
            }
            o.mentions_scene = true;
            k = m.end.max(k + 1);
            continue;
        }
        let Some(t) = tokens.get(k) else { break };
        if t.kind == Kind::Punct || (k > from && t.is_any(OBJECT_END)) {
            break;
        }
        if t.kind == Kind::Word && !is_consumed(consumed, k) {
            let stem = t.stem.as_str();
            if is(stem, list::ELEMENT_NOUNS) && !o.mentions_scene {
                o.element_first = true;
            }
            if is(stem, list::NEW_SCENE_NOUNS) && stem != "one" {
                o.new_scene_noun = true;
            }
            if t.is("one") && k > from && word(tokens, k - 1).is_some_and(|p| p == "new" || p == "another") {
                o.new_scene_noun = true;
            }
            if t.is_any(&["new", "another", "extra", "additional"]) {
                o.new_marker = true;
            }
            if is(stem, list::EDIT_FIX_NOUNS) {
                o.edit_fix_noun = true;
            }
            if t.is_any(&["duration", "length", "runtime"]) {
                o.length_noun = true;
            }
        }
        k += 1;
    }
    o
}

/// The first token of an object phrase after its determiners.
fn first_content_of(tokens: &[Token], from: usize, end: usize) -> usize {
    (from..end)
        .find(|&k| {
            !tokens
                .get(k)
                .is_some_and(|t| t.is_any(&["the", "a", "an", "this", "that", "our", "my", "your", "all", "some"]))
        })
        .unwrap_or(end)
}

/// Whether a mention locates something in a scene: "in the intro", "from
/// the stats scene", "on slide 2".
pub(crate) fn is_locative(tokens: &[Token], m: &Mention) -> bool {
    let mut j = m.start;
    while j > 0 {
        j -= 1;
        match word(tokens, j) {
            Some("the" | "this" | "that" | "our" | "my") => continue,
            Some(w) => {
                return ["in", "on", "from", "inside", "within", "into", "onto", "of", "to", "at"].contains(&w)
                    || tokens.get(m.end).is_some_and(|t| is(t.text.as_str(), list::SCENE_NOUNS));
            }
            None => break,
        }
    }
    tokens.get(m.end).is_some_and(|t| is(t.text.as_str(), list::SCENE_NOUNS))
}

/// "into a new scene", "as a new intro", "into one scene": the result is a new scene.
fn becomes_new_scene(tokens: &[Token], range: &Range<usize>) -> bool {
    (range.start..range.end).any(|i| {
        word(tokens, i).is_some_and(|w| w == "into" || w == "as")
            && word(tokens, i + 1).is_some_and(|w| ["a", "an", "one", "new", "another", "single", "its"].contains(&w))
            && (i + 1..(i + 4).min(range.end)).any(|k| {
                tokens.get(k).is_some_and(|t| {
                    t.kind == Kind::Word && is(t.stem.as_str(), list::NEW_SCENE_NOUNS) && t.stem != "one"
                })
            })
    })
}

/// Signs of a render failure: "broken", "doesn't render", "black screen".
pub(crate) fn broken_signal(tokens: &[Token], range: &Range<usize>, consumed: &[bool]) -> bool {
    (range.start..range.end).any(|i| {
        if is_consumed(consumed, i) {
            return false;
        }
        let Some(w) = word(tokens, i) else { return false };
        if is(w, list::BROKEN_WORDS) {
            // "the broken scene" as a reference still says something is broken.
            return true;
        }
        if RENDER_NEGATIONS.contains(&w) {
            return (i + 1..(i + 3).min(range.end)).any(|k| word(tokens, k).is_some_and(|x| RENDER_VERBS.contains(&x)));
        }
        if (w == "black" || w == "white" || w == "empty") && word(tokens, i + 1) == Some("screen") {
            return true;
        }
        w == "nothing"
            && word(tokens, i + 1).is_some_and(|x| ["shows", "renders", "appears", "loads", "plays"].contains(&x))
    })
}

/// Whether the clause's durations are element timings ("fade in over 2 seconds").
fn timing_bound(tokens: &[Token], range: &Range<usize>, d: &DurationExpr) -> bool {
    let animated = (range.start..range.end).any(|i| word(tokens, i).is_some_and(|w| is(w, list::ANIMATION_WORDS)));
    let prev = d.start.checked_sub(1).and_then(|p| word(tokens, p));
    animated || prev.is_some_and(|p| ["after", "over", "within", "every", "at", "per"].contains(&p))
}

/// The clause being read: its tokens and what other passes found in them.
struct Clause<'a> {
    tokens: &'a [Token],
    range: Range<usize>,
    consumed: &'a [bool],
    mentions: &'a [&'a Mention],
}

impl Clause<'_> {
    fn word(&self, i: usize) -> Option<&str> {
        word(self.tokens, i)
    }

    /// Facts about the object that starts at `from`.
    fn object_from(&self, from: usize) -> Object {
        object_of(self.tokens, from, self.range.end, self.consumed, self.mentions)
    }

    /// Whether token `k` is consumed by a scene name or inside a mention.
    fn is_taken(&self, k: usize) -> bool {
        is_consumed(self.consumed, k) || self.mentions.iter().any(|m| m.start <= k && k < m.end)
    }
}

/// A clause's verb: its class and the tokens it spans.
#[derive(Debug, Clone, Copy)]
struct Verb {
    class: VerbClass,
    /// The verb's first token.
    at: usize,
    /// One past the verb (where its object starts).
    end: usize,
}

/// What the search for a clause's first verb found.
enum FirstVerb {
    Found(Verb),
    /// A verb recognised despite a typo.
    Typo(Verb),
    /// A negation came first: the clause asks for nothing.
    Negated,
    /// No verb (a statement such as "scene 3 is broken").
    Absent,
}

/// Reads one clause.
pub(crate) fn read(
    tokens: &[Token],
    range: Range<usize>,
    consumed: &[bool],
    mentions: &[&Mention],
    durations: &[DurationExpr],
    images: usize,
) -> Reading {
    let clause = Clause { tokens, range, consumed, mentions };
    let mut reading = Reading::with_durations(&clause, durations);
    let question = tokens.get(clause.range.start).is_some_and(|t| t.is_any(QUESTION_STARTS));
    let verb = match first_verb(&clause, question) {
        FirstVerb::Found(verb) => Some(verb),
        FirstVerb::Typo(verb) => {
            reading.typo = true;
            Some(verb)
        }
        FirstVerb::Negated => return reading,
        FirstVerb::Absent => None,
    };
    reading.intent = match verb {
        Some(verb) => verb_intent(&clause, verb, &reading, images),
        None => {
            reading.from_state = true;
            state_intent(tokens, &clause.range, consumed, mentions, &reading, question)
        }
    };
    if reading.intent == Some(Intent::Duration) && reading.lengths.is_empty() {
        reading.lengths.push(implied_length(&clause, verb));
    }
    if let Some(verb) = verb {
        reading.element_mentions = clause.object_from(verb.end).element_mentions;
    }
    if reading.intent == Some(Intent::Edit) {
        (reading.complexity, reading.complexity_guessed) = edit_complexity(&clause, verb);
    }
    reading
}

impl Reading {
    /// A reading with no request yet, its durations split into scene
    /// lengths and element timings.
    fn with_durations(clause: &Clause<'_>, durations: &[DurationExpr]) -> Reading {
        let (timings, lengths): (Vec<DurationExpr>, Vec<DurationExpr>) =
            durations.iter().partition(|d| timing_bound(clause.tokens, &clause.range, d));
        Reading {
            intent: None,
            complexity: EditComplexity::Creative,
            complexity_guessed: false,
            from_state: false,
            typo: false,
            lengths,
            timings,
            element_mentions: Vec::new(),
        }
    }
}

/// The first verb of the clause, unless a negation or a relative clause comes first.
fn first_verb(clause: &Clause<'_>, question: bool) -> FirstVerb {
    let tokens = clause.tokens;
    let mut first_content = true;
    for k in clause.range.clone() {
        if clause.is_taken(k) {
            first_content = false;
            continue;
        }
        let Some(t) = tokens.get(k) else { break };
        if negates(clause, k) {
            return no_longer_wanted(clause, k).map_or(FirstVerb::Negated, FirstVerb::Found);
        }
        if t.is_any(&["which", "who", "whose"]) || (t.is("that") && !first_content) {
            break;
        }
        if let Some((class, end)) = verb_at(tokens, k)
            && asks_with_verb(clause, k, end, question, first_content)
        {
            return FirstVerb::Found(Verb { class, at: k, end });
        }
        if first_content && let Some((class, end)) = typo_verb(tokens, k) {
            return FirstVerb::Typo(Verb { class, at: k, end });
        }
        if !(t.kind == Kind::Word && is(t.text.as_str(), list::FILLERS)) {
            first_content = false;
        }
    }
    FirstVerb::Absent
}

/// Whether token `k` negates what follows ("don't", "do not", "please not").
fn negates(clause: &Clause<'_>, k: usize) -> bool {
    let Some(t) = clause.tokens.get(k) else { return false };
    t.is_any(NEGATIONS)
        || (t.is("not") && k > clause.range.start && clause.word(k - 1).is_some_and(|p| p == "do" || p == "please"))
}

/// "I don't need the team photos anymore": no longer wanted means delete,
/// unless it goes on about how ("don't want the intro to be blue").
fn no_longer_wanted(clause: &Clause<'_>, negation: usize) -> Option<Verb> {
    let mut j = negation + 1;
    while clause.word(j).is_some_and(|w| w == "really" || w == "even") {
        j += 1;
    }
    let unwanted = clause.word(j).is_some_and(|w| w == "need" || w == "want");
    let goes_on =
        (j + 1..clause.range.end).any(|x| clause.word(x).is_some_and(|w| ["to", "be", "so", "until"].contains(&w)));
    (unwanted && !goes_on).then_some(Verb { class: VerbClass::Delete, at: negation, end: j + 1 })
}

/// Whether a verb-looking word at `at` (ending at `end`) is the clause's request.
fn asks_with_verb(clause: &Clause<'_>, at: usize, end: usize, question: bool, first_content: bool) -> bool {
    let prev = at.checked_sub(1).filter(|&p| p >= clause.range.start).and_then(|p| clause.word(p));
    // "the color", "its style": a noun, not a verb.
    let noun_position = prev.is_some_and(|p| NOUN_DETERMINERS.contains(&p));
    // In a question only a verb after a subject or modal asks for something
    // ("what if we cut the intro", "how do I change the color").
    let question_ok = !question || prev.is_some_and(|p| QUESTION_VERB_LEADS.contains(&p));
    // "hook: shorter, punchier copy": a verb-looking last word after other
    // words is a noun; a request's verb has something after it.
    let trailing_noun = !first_content && end >= clause.range.end;
    !noun_position && question_ok && !trailing_noun
}

/// What a clause with a verb asks for: the verb's class, refined by its
/// object and the durations around it.
fn verb_intent(clause: &Clause<'_>, verb: Verb, reading: &Reading, images: usize) -> Option<Intent> {
    if reorders_scenes(clause.tokens, &clause.range, clause.consumed, clause.mentions, verb.at, verb.end) {
        return Some(Intent::Reorder);
    }
    let obj = clause.object_from(verb.end);
    let has_length = !reading.lengths.is_empty();
    let has_valued_length = reading.lengths.iter().any(|d| d.amount.has_value());
    let intent = match verb.class {
        VerbClass::Add => add_intent(clause, verb, &obj, reading),
        VerbClass::Duplicate => Intent::Duplicate,
        VerbClass::Make => make_intent(clause, verb, &obj, has_length),
        VerbClass::Delete if has_valued_length => Intent::Duration,
        VerbClass::Delete if obj.element_first => Intent::Edit,
        VerbClass::Delete => Intent::Delete,
        VerbClass::Fix if obj.edit_fix_noun && (!obj.mentions_scene || obj.element_first) => Intent::Edit,
        VerbClass::Fix => Intent::Fix,
        VerbClass::Duration if obj.element_first && !has_valued_length => Intent::Edit,
        VerbClass::Duration => Intent::Duration,
        VerbClass::Analyze => return (images > 0).then_some(Intent::Analyze),
        VerbClass::Edit => edit_intent(clause, verb, &obj, has_valued_length),
    };
    Some(intent)
}

/// "add": a new scene, an element in a scene, or more time ("add 2 seconds").
fn add_intent(clause: &Clause<'_>, verb: Verb, obj: &Object, reading: &Reading) -> Intent {
    let relative_right_after =
        reading.lengths.iter().any(|d| d.start == verb.end && matches!(d.amount, Amount::Delta(_)));
    // "add these to the demo", "add more energy to the intro".
    let into_named_scene = || {
        clause
            .mentions
            .iter()
            .any(|m| !m.reference && matches!(m.refers, Refers::Scenes(..)) && is_locative(clause.tokens, m))
    };
    if relative_right_after {
        Intent::Duration
    } else if becomes_new_scene(clause.tokens, &clause.range) || obj.new_scene_noun || obj.new_marker {
        Intent::Add
    } else if obj.element_first || matches!(clause.word(verb.at), Some("put" | "place")) || into_named_scene() {
        Intent::Edit
    } else {
        Intent::Add
    }
}

/// "make": a new scene ("make a scene"), a length ("make the intro 5
/// seconds") or an edit ("make it blue").
fn make_intent(clause: &Clause<'_>, verb: Verb, obj: &Object, has_length: bool) -> Intent {
    let next = clause.word(verb.end);
    let indefinite = next.is_some_and(|w| ["a", "an", "another", "new", "some"].contains(&w))
        || (next == Some("one") && clause.word(verb.end + 1) == Some("more"));
    let in_named_scene = clause.mentions.iter().any(|m| matches!(m.refers, Refers::Scenes(..)) && !m.reference);
    if becomes_new_scene(clause.tokens, &clause.range) || (indefinite && !(obj.element_first && in_named_scene)) {
        Intent::Add
    } else if has_length && !obj.element_first {
        Intent::Duration
    } else {
        Intent::Edit
    }
}

/// An edit verb: an edit, a new scene ("turn it into a new scene") or a
/// length ("change the duration", "set the intro to 5 seconds").
fn edit_intent(clause: &Clause<'_>, verb: Verb, obj: &Object, has_valued_length: bool) -> Intent {
    let length_verb = clause.word(verb.at).is_some_and(|w| {
        ["change", "set", "adjust", "update", "increase", "decrease", "reduce", "modify"].contains(&w)
    });
    if becomes_new_scene(clause.tokens, &clause.range) {
        Intent::Add
    } else if (has_valued_length && !obj.element_first) || (length_verb && obj.length_noun) {
        Intent::Duration
    } else {
        Intent::Edit
    }
}

/// A length change without an amount ("increase the length of the
/// intro"): the verb gives the direction.
fn implied_length(clause: &Clause<'_>, verb: Option<Verb>) -> DurationExpr {
    let shorter = verb
        .and_then(|v| clause.word(v.at))
        .is_some_and(|w| ["decrease", "reduce", "shorten", "trim", "cut", "speed"].contains(&w));
    let at = verb.map_or(clause.range.start, |v| v.at);
    DurationExpr { start: at, end: at + 1, amount: if shorter { Amount::Shorter } else { Amount::Longer } }
}

/// How invasive an edit is, and whether that was a guess.
fn edit_complexity(clause: &Clause<'_>, verb: Option<Verb>) -> (EditComplexity, bool) {
    let verb_word = verb.and_then(|v| clause.word(v.at));
    // "use these photos in the kitchen" adds them; "use this photo as the
    // background" sets one property.
    let uses_into_scene = verb_word.is_some_and(|w| w == "use" || w == "include")
        && !clause.range.clone().any(|i| clause.word(i).is_some_and(|w| w == "as" || w == "for"))
        && clause.mentions.iter().any(|m| is_locative(clause.tokens, m));
    let element_verb = verb_word.is_some_and(|w| ELEMENT_ADD_REMOVE_VERBS.contains(&w))
        || uses_into_scene
        || verb.is_some_and(|v| matches!(v.class, VerbClass::Add | VerbClass::Delete));
    let obj_element = verb.is_some_and(|v| clause.object_from(v.end).element_first);
    complexity(clause.tokens, &clause.range, clause.consumed, clause.mentions, element_verb && obj_element)
}

/// "move the outro before the intro", "swap the intro and the outro",
/// "reorder the scenes": changing the order of scenes, not their content.
fn reorders_scenes(
    tokens: &[Token],
    range: &Range<usize>,
    consumed: &[bool],
    mentions: &[&Mention],
    at: usize,
    end: usize,
) -> bool {
    let Some(verb) = word(tokens, at) else { return false };
    if !["move", "put", "place", "swap", "switch", "reorder", "rearrange", "shift", "bring", "reposition"]
        .contains(&verb)
    {
        return false;
    }
    let uncovered = |i: usize| !is_consumed(consumed, i) && !mentions.iter().any(|m| m.start <= i && i < m.end);
    let has_element = (range.start..range.end).any(|i| {
        uncovered(i) && tokens.get(i).is_some_and(|t| t.kind == Kind::Word && is(t.stem.as_str(), list::ELEMENT_NOUNS))
    });
    if has_element {
        return false;
    }
    let scene_mentions = mentions.iter().filter(|m| matches!(m.refers, Refers::Scenes(..)) && !m.reference).count();
    let obj = object_of(tokens, end, range.end, consumed, mentions);
    let position_word = (range.start..range.end).any(|i| {
        uncovered(i)
            && word(tokens, i).is_some_and(|w| {
                ["first", "last", "beginning", "start", "end", "front", "back", "before", "after", "earlier", "later"]
                    .contains(&w)
            })
    });
    let scene_list = word(tokens, end).is_some_and(|w| w == "the")
        && word(tokens, end + 1).is_some_and(|w| ["scenes", "slides", "order"].contains(&w));
    (obj.mentions_scene && position_word)
        || (["swap", "switch", "reorder", "rearrange"].contains(&verb) && (scene_mentions >= 2 || scene_list))
}

/// A clause without a verb: "scene 3 is broken", "the hook should last half a
/// minute", "I need another scene", "the title is too small".
fn state_intent(
    tokens: &[Token],
    range: &Range<usize>,
    consumed: &[bool],
    mentions: &[&Mention],
    reading: &Reading,
    question: bool,
) -> Option<Intent> {
    if broken_signal(tokens, range, consumed) {
        return Some(Intent::Fix);
    }
    if question {
        return None;
    }
    // The subject: an element ("the title is too long") or a scene.
    let is_element =
        |i: usize| tokens.get(i).is_some_and(|t| t.kind == Kind::Word && is(t.stem.as_str(), list::ELEMENT_NOUNS));
    // "the title is too long", "the intro text is too long": an element's length is an edit.
    let subject_is_element = (range.start..range.end)
        .find(|&i| mentions.iter().any(|m| m.start == i) || is_element(i))
        .is_some_and(|i| match mentions.iter().find(|m| m.start == i) {
            Some(m) => is_element(m.end),
            None => true,
        });
    if !reading.lengths.is_empty() && !subject_is_element {
        return Some(Intent::Duration);
    }
    let new_scene = (range.start..range.end).any(|i| {
        // "the new scene" is one that exists.
        let definite = i > 0 && word(tokens, i - 1).is_some_and(|p| ["the", "this", "that", "my", "our"].contains(&p));
        !definite
            && word(tokens, i)
                .is_some_and(|w| ["a", "an", "another", "new", "additional", "extra", "more"].contains(&w))
            && (i + 1..(i + 4).min(range.end)).any(|k| {
                tokens.get(k).is_some_and(|t| {
                    t.kind == Kind::Word
                        && is(t.stem.as_str(), list::NEW_SCENE_NOUNS)
                        && t.stem != "one"
                        && !mentions
                            .iter()
                            .any(|m| m.start <= k && k < m.end && !matches!(m.refers, Refers::Unresolved(_)))
                })
            })
    });
    if new_scene {
        return Some(Intent::Add);
    }
    let trigger = (range.start..range.end).any(|i| {
        word(tokens, i).is_some_and(|w| {
            ["too", "should", "needs", "need", "must", "feels", "looks", "seems", "could", "would", "feel", "look"]
                .contains(&w)
        })
    });
    let (_, guessed) = complexity(tokens, range, consumed, mentions, false);
    if trigger && !guessed {
        return Some(Intent::Edit);
    }
    None
}

/// How invasive an edit is, and whether that was a guess (no cue found).
///
/// Structural cues (layout, adding or removing elements) win; then the
/// whole-scene look ("feel", "vibe", "style", "match this image"); then a
/// single property (a colour, a text, a font, a size, one timing); then
/// adjectives that describe a whole scene ("modern", "calmer").
pub(crate) fn complexity(
    tokens: &[Token],
    range: &Range<usize>,
    consumed: &[bool],
    mentions: &[&Mention],
    adds_or_removes_element: bool,
) -> (EditComplexity, bool) {
    let words = || {
        (range.start..range.end)
            .filter(|&i| {
                !is_consumed(consumed, i)
                    && !mentions.iter().any(|m| m.start <= i && i < m.end && !matches!(m.refers, Refers::Pronoun))
            })
            .filter_map(|i| tokens.get(i))
    };
    let structural = adds_or_removes_element
        || words().any(|t| t.kind == Kind::Word && is(t.text.as_str(), list::STRUCTURAL_WORDS))
        || words().zip(words().skip(1)).any(|(a, b)| a.is("side") && b.is("by"));
    if structural {
        return (EditComplexity::Structural, false);
    }
    if words().any(|t| t.kind == Kind::Word && is(t.text.as_str(), list::CREATIVE_STRONG)) {
        return (EditComplexity::Creative, false);
    }
    let surgical = words().any(|t| {
        t.kind == Kind::Quote
            || t.kind == Kind::Word
                && (is(t.text.as_str(), list::SURGICAL_WORDS)
                    || is(t.stem.as_str(), list::SURGICAL_WORDS)
                    || is(t.text.as_str(), list::COLOR_WORDS)
                    || is(t.text.as_str(), list::FONT_WORDS)
                    || is_hex_color(&t.text)
                    || t.text.ends_with("px") && t.text.trim_end_matches("px").chars().all(|c| c.is_ascii_digit()))
    });
    if surgical {
        return (EditComplexity::Surgical, false);
    }
    if words().any(|t| t.kind == Kind::Word && is(t.text.as_str(), list::CREATIVE_WEAK)) {
        return (EditComplexity::Creative, false);
    }
    (EditComplexity::Creative, true)
}

fn is_hex_color(word: &str) -> bool {
    word.strip_prefix('#').is_some_and(|h| (h.len() == 3 || h.len() == 6) && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Attributes the clause names: color, text, font, size, element, style, timing.
pub(crate) fn attributes(
    tokens: &[Token],
    range: &Range<usize>,
    consumed: &[bool],
    timings: &[DurationExpr],
) -> BTreeMap<String, String> {
    let mut attrs = BTreeMap::new();
    let idx: Vec<usize> = (range.start..range.end).filter(|&i| !is_consumed(consumed, i)).collect();
    for (pos, &i) in idx.iter().enumerate() {
        let Some(t) = tokens.get(i) else { continue };
        match t.kind {
            Kind::Quote if !attrs.contains_key("text") => {
                attrs.insert("text".to_string(), t.text.clone());
            }
            Kind::Word => {
                let w = t.text.as_str();
                if !attrs.contains_key("color") {
                    if is_hex_color(w) {
                        attrs.insert("color".to_string(), w.to_string());
                    } else if is(w, list::COLOR_WORDS) {
                        let mut phrase = vec![w];
                        let mut back = pos;
                        while back > 0 && phrase.len() < 3 {
                            back -= 1;
                            let Some(p) = idx.get(back).and_then(|&j| word(tokens, j)) else { break };
                            if COLOR_MODIFIERS.contains(&p) && p != "our" {
                                phrase.insert(0, p);
                            } else {
                                break;
                            }
                        }
                        attrs.insert("color".to_string(), phrase.join(" "));
                    }
                }
                if !attrs.contains_key("font") && is(w, list::FONT_WORDS) {
                    let value = if w == "sans" && idx.get(pos + 1).and_then(|&j| word(tokens, j)) == Some("serif") {
                        "sans-serif".to_string()
                    } else {
                        w.to_string()
                    };
                    attrs.insert("font".to_string(), value);
                }
                if !attrs.contains_key("size") {
                    let size = match w {
                        "bigger" | "larger" | "enlarge" | "huge" | "big" => Some("bigger".to_string()),
                        "smaller" | "shrink" | "tiny" | "small" => Some("smaller".to_string()),
                        _ if w.ends_with("px") || w.ends_with("pt") => {
                            let n = &w[..w.len() - 2];
                            (!n.is_empty() && n.chars().all(|c| c.is_ascii_digit())).then(|| w.to_string())
                        }
                        _ => None,
                    };
                    if let Some(size) = size {
                        attrs.insert("size".to_string(), size);
                    }
                }
                if !attrs.contains_key("element")
                    && is(t.stem.as_str(), list::ELEMENT_NOUNS)
                    && !["color", "colour", "font", "typeface"].contains(&t.stem.as_str())
                {
                    attrs.insert("element".to_string(), t.stem.clone());
                }
                if is(w, list::CREATIVE_WEAK) && !["better", "nicer", "boring", "dull", "bland"].contains(&w) {
                    attrs
                        .entry("style".to_string())
                        .and_modify(|s: &mut String| {
                            if !s.split(", ").any(|x| x == w) {
                                s.push_str(", ");
                                s.push_str(w);
                            }
                        })
                        .or_insert_with(|| w.to_string());
                }
            }
            _ => {}
        }
    }
    if let Some(t) = timings.first()
        && let Amount::Absolute(s) = t.amount
    {
        attrs.insert("timing_seconds".to_string(), format_seconds(s));
    }
    attrs
}

/// Whether the clause talks about an attached image ("this image", "these mockups").
pub(crate) fn mentions_image(tokens: &[Token], range: &Range<usize>) -> bool {
    (range.start..range.end).any(|i| {
        tokens.get(i).is_some_and(|t| {
            t.kind == Kind::Word
                && (is(t.text.as_str(), list::IMAGE_NOUNS)
                    || (t.is_any(&["this", "these", "attached", "above"])
                        && !tokens
                            .get(i + 1)
                            .is_some_and(|n| is(n.text.as_str(), list::SCENE_NOUNS) || n.stem == "scene")))
        })
    })
}

/// Which attached images a clause means ("the first image", "image 2",
/// "the second one"); None means all of them.
pub(crate) fn image_selection(tokens: &[Token], range: &Range<usize>, images: usize) -> Option<Vec<usize>> {
    if images < 2 {
        return None;
    }
    let mut picked = Vec::new();
    for i in range.start..range.end {
        let Some(t) = tokens.get(i) else { continue };
        let next = tokens.get(i + 1);
        let next_is_image = next.is_some_and(|n| is(n.text.as_str(), list::IMAGE_NOUNS) || n.is("one"));
        let position = if next_is_image {
            if t.is("last") { Some(images) } else { ordinal_value(&t.text) }
        } else if is(t.text.as_str(), list::IMAGE_NOUNS) {
            next.and_then(|n| n.number).filter(|n| n.fract() == 0.0 && *n >= 1.0).map(|n| n as usize)
        } else {
            None
        };
        if let Some(p) = position.filter(|p| (1..=images).contains(p))
            && !picked.contains(&(p - 1))
        {
            picked.push(p - 1);
        }
    }
    (!picked.is_empty()).then_some(picked)
}

/// How many new scenes a create asks for ("add two new scenes", "create 3
/// slides"); 1 unless the first scene noun is a counted plural.
pub(crate) fn new_scene_count(tokens: &[Token], range: &Range<usize>) -> usize {
    let Some(noun) = (range.start..range.end).find(|&i| {
        tokens
            .get(i)
            .is_some_and(|t| t.kind == Kind::Word && is(t.stem.as_str(), list::NEW_SCENE_NOUNS) && t.stem != "one")
    }) else {
        return 1;
    };
    if !tokens[noun].text.ends_with('s') {
        return 1;
    }
    (noun.saturating_sub(3)..noun)
        .rev()
        .find_map(|i| {
            let t = tokens.get(i)?;
            t.number.or_else(|| word_number(&t.text)).filter(|n| n.fract() == 0.0)
        })
        .map(|n| n.clamp(1.0, 10.0) as usize)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::rules::target::{Mentions, find_mentions};
    use crate::model::testing::scenes;
    use crate::text::{duration, lexer::tokenize};

    /// A prompt read as one clause, in a project whose scenes have these names.
    struct Prompt {
        tokens: Vec<Token>,
        found: Mentions,
    }

    impl Prompt {
        fn new(prompt: &str, names: &[&str]) -> Prompt {
            let tokens = tokenize(prompt);
            let found = find_mentions(&tokens, &scenes(names), 0);
            Prompt { tokens, found }
        }

        /// Runs `f` on the whole prompt as one clause.
        fn clause<R>(&self, f: impl FnOnce(&Clause<'_>) -> R) -> R {
            let mentions: Vec<&Mention> = self.found.list.iter().collect();
            f(&Clause {
                tokens: &self.tokens,
                range: 0..self.tokens.len(),
                consumed: &self.found.consumed,
                mentions: &mentions,
            })
        }

        fn read(&self, images: usize) -> Reading {
            let mentions: Vec<&Mention> = self.found.list.iter().collect();
            let range = 0..self.tokens.len();
            let durations = duration::find(&self.tokens, range.clone(), &self.found.consumed);
            read(&self.tokens, range, &self.found.consumed, &mentions, &durations, images)
        }
    }

    const SCENES: &[&str] = &["Intro", "Product Demo", "Outro"];

    /// What [`first_verb`] finds in `prompt`: "Found", "Typo", "Negated" or
    /// "Absent", with the verb's class and word.
    fn first_verb_of(prompt: &str) -> (&'static str, Option<(VerbClass, String)>) {
        let p = Prompt::new(prompt, SCENES);
        p.clause(|c| {
            let question = c.tokens.first().is_some_and(|t| t.is_any(QUESTION_STARTS));
            let verb = |v: Verb| Some((v.class, c.word(v.at).unwrap_or_default().to_string()));
            match first_verb(c, question) {
                FirstVerb::Found(v) => ("Found", verb(v)),
                FirstVerb::Typo(v) => ("Typo", verb(v)),
                FirstVerb::Negated => ("Negated", None),
                FirstVerb::Absent => ("Absent", None),
            }
        })
    }

    fn found(class: VerbClass, word: &str) -> (&'static str, Option<(VerbClass, String)>) {
        ("Found", Some((class, word.to_string())))
    }

    fn intent(prompt: &str, images: usize) -> Option<Intent> {
        Prompt::new(prompt, SCENES).read(images).intent
    }

    fn complexity_of(prompt: &str) -> (EditComplexity, bool) {
        let r = Prompt::new(prompt, SCENES).read(0);
        assert_eq!(r.intent, Some(Intent::Edit), "{prompt}");
        (r.complexity, r.complexity_guessed)
    }

    #[test]
    fn first_verb_skips_fillers_and_tolerates_typos() {
        assert_eq!(first_verb_of("make the intro blue"), found(VerbClass::Make, "make"));
        assert_eq!(first_verb_of("please add a scene about pricing"), found(VerbClass::Add, "add"));
        assert_eq!(first_verb_of("remove"), found(VerbClass::Delete, "remove"));
        assert_eq!(first_verb_of("delet the outro"), ("Typo", Some((VerbClass::Delete, "delet".into()))));
        assert_eq!(first_verb_of("remvoe the outro"), ("Typo", Some((VerbClass::Delete, "remvoe".into()))));
    }

    #[test]
    fn first_verb_is_not_a_noun_a_relative_clause_or_a_question_word() {
        // A statement has no verb to act on.
        assert_eq!(first_verb_of("scene 3 is broken"), ("Absent", None));
        // "the edit": a determiner makes it a noun.
        assert_eq!(first_verb_of("the edit looks off"), ("Absent", None));
        // "which shows": the verb of a relative clause asks for nothing.
        assert_eq!(first_verb_of("the scene which shows pricing is too long"), ("Absent", None));
        // "copy" last, after other words, is a noun.
        assert_eq!(first_verb_of("hook: shorter, punchier copy"), ("Absent", None));
        // In a question only a verb after a subject or modal asks.
        assert_eq!(first_verb_of("what is a cut"), ("Absent", None));
        assert_eq!(first_verb_of("how do I change the color"), found(VerbClass::Edit, "change"));
    }

    #[test]
    fn negation_cancels_the_request_unless_something_is_no_longer_wanted() {
        assert_eq!(first_verb_of("don't change the intro"), ("Negated", None));
        assert_eq!(first_verb_of("do not touch the outro"), ("Negated", None));
        assert_eq!(first_verb_of("please not the intro"), ("Negated", None));
        assert_eq!(first_verb_of("never use gradients"), ("Negated", None));
        // No longer needed or wanted is a delete, found at the negation.
        assert_eq!(first_verb_of("I don't need the team photos anymore"), found(VerbClass::Delete, "don't"));
        assert_eq!(first_verb_of("I don't really need the outro"), found(VerbClass::Delete, "don't"));
        // ... unless it says how it should be instead.
        assert_eq!(first_verb_of("I don't want the intro to be blue"), ("Negated", None));
        assert_eq!(intent("don't change the intro", 0), None);
        assert_eq!(intent("I don't need the outro anymore", 0), Some(Intent::Delete));
    }

    #[test]
    fn negates_needs_a_word_before_not() {
        let p = Prompt::new("do not touch the outro", SCENES);
        assert!(p.clause(|c| !negates(c, 0) && negates(c, 1)));
        let p = Prompt::new("not the intro", SCENES);
        assert!(p.clause(|c| !negates(c, 0)));
        let p = Prompt::new("never use gradients", SCENES);
        assert!(p.clause(|c| negates(c, 0)));
    }

    #[test]
    fn add_is_a_scene_an_element_or_more_time() {
        assert_eq!(intent("add a scene about pricing", 0), Some(Intent::Add));
        assert_eq!(intent("add a logo to the intro", 0), Some(Intent::Edit));
        assert_eq!(intent("add 2 seconds to the intro", 0), Some(Intent::Duration));
    }

    #[test]
    fn make_is_a_scene_a_length_or_an_edit() {
        assert_eq!(intent("make a new scene about pricing", 0), Some(Intent::Add));
        assert_eq!(intent("make the intro 5 seconds", 0), Some(Intent::Duration));
        assert_eq!(intent("make it blue", 0), Some(Intent::Edit));
    }

    #[test]
    fn delete_and_fix_act_on_the_scene_unless_an_element_comes_first() {
        assert_eq!(intent("delete the intro", 0), Some(Intent::Delete));
        assert_eq!(intent("delete the title from the intro", 0), Some(Intent::Edit));
        assert_eq!(intent("remove the logo from the intro", 0), Some(Intent::Edit));
        assert_eq!(intent("cut 3 seconds from the outro", 0), Some(Intent::Duration));
        assert_eq!(intent("fix the intro", 0), Some(Intent::Fix));
        assert_eq!(intent("fix the typo in the intro", 0), Some(Intent::Edit));
    }

    #[test]
    fn other_verbs_by_class() {
        assert_eq!(intent("duplicate the intro", 0), Some(Intent::Duplicate));
        assert_eq!(intent("change the duration of the intro", 0), Some(Intent::Duration));
        assert_eq!(intent("turn the outro into a new scene", 0), Some(Intent::Add));
        assert_eq!(intent("move the outro before the intro", 0), Some(Intent::Reorder));
        assert_eq!(intent("swap the intro and the outro", 0), Some(Intent::Reorder));
        // Looking at an image needs an image.
        assert_eq!(intent("analyze this image", 0), None);
        assert_eq!(intent("analyze this image", 1), Some(Intent::Analyze));
        assert_eq!(intent("describe this image", 1), Some(Intent::Analyze));
    }

    #[test]
    fn statements_without_a_verb() {
        let broken = Prompt::new("scene 3 is broken", SCENES).read(0);
        assert_eq!((broken.intent, broken.from_state), (Some(Intent::Fix), true));
        assert_eq!(intent("the intro is too long", 0), Some(Intent::Duration));
        // An element's length is an edit, not the scene's.
        assert_eq!(intent("the title is too long", 0), Some(Intent::Edit));
    }

    #[test]
    fn implied_length_follows_the_verb() {
        let lengths = |prompt: &str| {
            let r = Prompt::new(prompt, SCENES).read(0);
            assert_eq!(r.intent, Some(Intent::Duration), "{prompt}");
            r.lengths.iter().map(|d| d.amount).collect::<Vec<_>>()
        };
        assert_eq!(lengths("shorten the intro"), [Amount::Shorter]);
        assert_eq!(lengths("trim the outro"), [Amount::Shorter]);
        assert_eq!(lengths("reduce the length of the intro"), [Amount::Shorter]);
        assert_eq!(lengths("extend the outro"), [Amount::Longer]);
        assert_eq!(lengths("lengthen the outro"), [Amount::Longer]);
        assert_eq!(lengths("increase the length of the intro"), [Amount::Longer]);
        // A stated amount is not replaced.
        assert_eq!(lengths("make the intro 5 seconds"), [Amount::Absolute(5.0)]);

        // Without a verb it sits at the clause's start.
        let p = Prompt::new("reduce the length of the intro", SCENES);
        let implied = p.clause(|c| implied_length(c, None));
        assert_eq!((implied.start, implied.end, implied.amount), (0, 1, Amount::Longer));
        let verb = Verb { class: VerbClass::Duration, at: 0, end: 1 };
        assert_eq!(p.clause(|c| implied_length(c, Some(verb))).amount, Amount::Shorter);
    }

    #[test]
    fn edit_complexity_from_structure_to_a_single_property() {
        // Adding, removing or arranging elements.
        assert_eq!(complexity_of("add a logo to the intro"), (EditComplexity::Structural, false));
        assert_eq!(complexity_of("remove the logo from the intro"), (EditComplexity::Structural, false));
        assert_eq!(
            complexity_of("put the logo and the tagline side by side in the intro"),
            (EditComplexity::Structural, false)
        );
        assert_eq!(complexity_of("use these photos in the intro"), (EditComplexity::Structural, false));
        // One property: a colour, a text, a hex code.
        assert_eq!(complexity_of("make it blue"), (EditComplexity::Surgical, false));
        assert_eq!(complexity_of("change the title text to 'Hello'"), (EditComplexity::Surgical, false));
        assert_eq!(complexity_of("make the background #1a1a2e"), (EditComplexity::Surgical, false));
        assert_eq!(complexity_of("use this photo as the background of the intro"), (EditComplexity::Surgical, false));
        // The whole scene's look.
        assert_eq!(complexity_of("make the intro feel more modern"), (EditComplexity::Creative, false));
        assert_eq!(complexity_of("make the intro calmer"), (EditComplexity::Creative, false));
        // No cue: creative, as a guess.
        assert_eq!(complexity_of("edit the intro"), (EditComplexity::Creative, true));
        assert_eq!(complexity_of("update the outro"), (EditComplexity::Creative, true));
    }
}
