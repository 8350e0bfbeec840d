//! Word lists the rules read prompts with. Lowercase; matched against
//! [`Token::text`](super::lexer::Token) unless a list says it holds stems.
//!
//! The lists used on every token are also indexed once per process
//! ([`is`]): one hash lookup answers which lists a word is in.

pub(crate) mod preference;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::LazyLock;

/// What a verb asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VerbClass {
    /// Create something (a scene, or an element inside one).
    Add,
    /// Make a copy of a scene.
    Duplicate,
    /// Delete a scene (or an element inside one).
    Delete,
    /// Repair a scene that does not render.
    Fix,
    /// Change how long a scene runs.
    Duration,
    /// Change a scene.
    Edit,
    /// "make": a new scene ("make a scene") or an edit ("make it blue").
    Make,
    /// Look at an attached image.
    Analyze,
}

/// The class of a single-word verb.
pub(crate) fn verb_class(word: &str) -> Option<VerbClass> {
    use VerbClass::*;
    let class = match word {
        "add" | "create" | "insert" | "append" | "build" | "generate" | "produce" | "compose" | "design" | "put"
        | "place" | "include" | "introduce" | "combine" | "merge" => Add,
        "duplicate" | "copy" | "clone" => Duplicate,
        "delete" | "remove" | "drop" | "erase" | "trash" | "scrap" | "ditch" | "discard" | "eliminate" | "cut"
        | "kill" | "nuke" | "axe" | "lose" => Delete,
        "fix" | "repair" | "debug" | "unbreak" | "troubleshoot" | "restore" => Fix,
        "shorten" | "lengthen" | "extend" | "trim" | "prolong" | "stretch" | "shave" => Duration,
        "make" => Make,
        "analyze" | "analyse" | "describe" | "identify" | "extract" | "explain" | "examine" | "inspect" | "compare"
        | "summarize" | "summarise" | "tell" | "evaluate" | "critique" | "transcribe" | "rate" => Analyze,
        "change" | "edit" | "modify" | "update" | "adjust" | "tweak" | "set" | "turn" | "give" | "use" | "apply"
        | "rename" | "replace" | "swap" | "switch" | "move" | "rearrange" | "reorder" | "reposition" | "resize"
        | "recolor" | "recolour" | "rewrite" | "reword" | "restyle" | "redesign" | "rework" | "revamp" | "refresh"
        | "improve" | "polish" | "enhance" | "brighten" | "darken" | "lighten" | "increase" | "decrease" | "reduce"
        | "enlarge" | "shrink" | "bolden" | "italicize" | "underline" | "center" | "centre" | "align" | "animate"
        | "highlight" | "emphasize" | "emphasise" | "flip" | "rotate" | "zoom" | "spice" | "punch" | "tone"
        | "simplify" | "arrange" | "shift" | "raise" | "lower" | "widen" | "narrow" | "crop" | "blur" | "sharpen"
        | "translate" | "capitalize" | "color" | "colour" | "fill" | "transform" | "convert" | "split" | "stack"
        | "match" | "hide" | "soften" | "modernize" | "modernise" | "refine" | "invert" | "mirror" | "spread"
        | "recreate" | "redo" | "style" | "jazz" | "bump" | "boost" => Edit,
        _ => return None,
    };
    Some(class)
}

/// Verbs long enough to be recognised with one typo ("delet", "chnage").
#[rustfmt::skip]
pub(crate) const TYPO_VERBS: &[&str] = &[
    "delete", "remove", "change", "create", "insert", "update", "modify", "adjust", "shorten", "lengthen", "extend",
    "rename", "replace", "repair", "rearrange", "reorder", "analyze", "describe", "generate", "duplicate", "increase",
    "decrease", "redesign", "restyle", "append", "build",
];

/// Words that may precede the verb of a request without changing it.
#[rustfmt::skip]
pub(crate) const FILLERS: &[&str] = &[
    "please", "pls", "plz", "kindly", "can", "could", "would", "will", "you", "u", "we", "i", "just", "now", "also",
    "then", "and", "ok", "okay", "so", "hey", "hi", "hello", "lets", "let's", "let", "us", "go", "ahead", "first",
    "firstly", "next", "finally", "lastly", "afterwards", "maybe", "quickly", "actually", "oh", "yes", "yeah", "want",
    "need", "i'd", "id", "like", "to", "wanna", "gonna", "try", "me", "help", "really", "definitely", "additionally",
    "plus", "after", "that", "secondly", "thirdly", "but", "instead", "alright", "great", "thanks", "cool", "sure",
];

/// Words that negate the request they precede.
pub(crate) const NEGATIONS: &[&str] = &["don't", "dont", "never", "shouldn't", "mustn't"];

/// Nouns that name a scene-level unit ("scene 2", "the last slide").
#[rustfmt::skip]
pub(crate) const SCENE_NOUNS: &[&str] = &[
    "scene", "scenes", "slide", "slides", "shot", "shots", "clip", "clips", "section", "sections", "segment",
    "segments", "part", "parts", "screen",
];

/// Words that, as an object, mean a new scene ("add an outro").
#[rustfmt::skip]
pub(crate) const NEW_SCENE_NOUNS: &[&str] = &[
    "scene", "slide", "shot", "clip", "section", "segment", "intro", "introduction", "outro", "opener", "ending",
    "closer", "credits", "finale", "conclusion", "one", "screen", "part", "chapter", "interlude", "transition",
];

/// Scene kinds a user names with "the" as if a scene had that name.
pub(crate) const SCENE_KIND_NAMES: &[&str] =
    &["intro", "introduction", "outro", "ending", "credits", "finale", "conclusion", "hook", "opener", "closer"];

/// Modifiers in "the X scene" that are not names.
#[rustfmt::skip]
pub(crate) const NON_NAME_MODIFIERS: &[&str] = &[
    "the", "a", "an", "this", "that", "these", "those", "my", "our", "your", "same", "current", "whole", "entire",
    "other", "next", "previous", "new", "broken", "failing", "last", "first", "final", "opening", "closing", "every",
    "each", "all", "one", "single", "empty", "blank", "main", "old", "which", "what", "another", "second", "third",
    "fourth", "fifth", "penultimate", "middle", "it", "its", "any", "whichever", "selected", "active", "following",
    "preceding", "above", "below", "original", "existing", "remaining", "only", "very",
];

/// Elements inside a scene (stems).
#[rustfmt::skip]
pub(crate) const ELEMENT_NOUNS: &[&str] = &[
    "title", "headline", "heading", "header", "subheading", "subtitle", "text", "copy", "caption", "label", "tagline",
    "slogan", "logo", "background", "bg", "button", "icon", "image", "photo", "picture", "illustration", "graphic",
    "chart", "graph", "table", "column", "row", "list", "bullet", "border", "shadow", "gradient", "font", "typeface",
    "color", "colour", "element", "shape", "line", "arrow", "animation", "transition", "card", "box", "badge",
    "banner", "footer", "overlay", "divider", "quote", "price", "tier", "cta", "link", "url", "website", "address",
    "number", "stat", "statistic", "counter", "timer", "map", "video", "screenshot", "avatar", "headshot", "name",
    "date", "emoji", "sticker", "watermark", "frame", "paragraph", "sentence", "word", "letter", "message",
    "description", "item", "point", "callout", "rating", "star", "disclaimer", "legal", "note", "mockup", "diagram",
    "pattern", "texture", "particle", "confetti", "effect", "sound", "music", "voiceover", "narration", "subtitle",
    "headshot", "signature", "signup", "form", "field", "input", "slider", "toggle", "menu", "nav", "navbar",
    "sidebar", "panel", "window",
];

/// Things a user asks to "fix" that are edits, not render failures (stems).
#[rustfmt::skip]
pub(crate) const EDIT_FIX_NOUNS: &[&str] = &[
    "typo", "spelling", "grammar", "wording", "text", "alignment", "spacing", "layout", "overlap", "position",
    "contrast", "color", "colour", "font", "size", "kerning", "padding", "margin", "order", "timing", "title",
    "headline", "caption", "label", "logo", "button", "capitalization", "punctuation", "misspelling", "copy",
];

/// Signs that a scene does not render.
#[rustfmt::skip]
pub(crate) const BROKEN_WORDS: &[&str] = &[
    "broken", "broke", "breaks", "crash", "crashes", "crashed", "crashing", "error", "errors", "erroring", "bug",
    "bugged", "buggy", "glitch", "glitchy", "glitching", "fails", "failing", "failed", "corrupted", "corrupt",
    "frozen", "freezes", "freezing", "exception", "blank",
];

/// Verbs whose negation means a render failure ("doesn't render").
#[rustfmt::skip]
pub(crate) const RENDER_VERBS: &[&str] = &[
    "render", "renders", "rendering", "load", "loads", "loading", "play", "plays", "playing", "work", "works",
    "working", "compile", "compiles", "compiling", "display", "displays", "displaying", "show", "shows", "showing",
    "appear", "appears", "open", "opens", "run", "runs",
];

/// Negations as used in "doesn't render".
#[rustfmt::skip]
pub(crate) const RENDER_NEGATIONS: &[&str] = &[
    "doesn't", "doesnt", "won't", "wont", "isn't", "isnt", "can't", "cant", "cannot", "not", "never", "didn't",
    "stopped", "fails", "failed", "failing", "no", "longer",
];

/// Animation words that make a duration an element timing, not a scene length.
#[rustfmt::skip]
pub(crate) const ANIMATION_WORDS: &[&str] = &[
    "fade", "fades", "fading", "animate", "animates", "animation", "animations", "transition", "transitions",
    "appear", "appears", "delay", "delayed", "reveal", "reveals", "zoom", "zooms", "spin", "spins", "bounce",
    "typewriter", "pause", "slide-in", "wipe", "pan", "scroll", "scrolls", "blink", "pulse", "flash", "countdown",
    "timer", "ease", "easing", "entrance", "exit", "stagger",
];

/// Cues that an edit changes layout and composition.
#[rustfmt::skip]
pub(crate) const STRUCTURAL_WORDS: &[&str] = &[
    "rearrange", "reorder", "reposition", "swap", "move", "arrange", "layout", "column", "columns", "grid", "stack",
    "stacked", "split", "order", "align", "alignment", "aligned", "center", "centre", "centered", "centred",
    "spacing", "spread", "distribute", "overlap", "overlapping", "group", "above", "below", "beneath", "underneath",
    "row", "rows", "vertically", "horizontally", "side", "corner", "left", "right", "top", "bottom", "position",
    "positions", "placement", "restructure", "reorganize", "reorganise", "compose", "composition", "middle",
];

/// Verbs that add or remove an element (structural when the object is an element).
#[rustfmt::skip]
pub(crate) const ELEMENT_ADD_REMOVE_VERBS: &[&str] = &[
    "add", "insert", "put", "place", "include", "remove", "delete", "drop", "hide", "cut", "erase", "append",
    "create", "build", "generate", "introduce",
];

/// Cues that an edit changes the whole look and feel of a scene.
#[rustfmt::skip]
pub(crate) const CREATIVE_STRONG: &[&str] = &[
    "feel", "feels", "feeling", "vibe", "vibes", "style", "styling", "look", "looks", "mood", "aesthetic",
    "aesthetics", "theme", "themed", "atmosphere", "tone", "tones", "energy", "redesign", "restyle", "revamp",
    "overhaul", "makeover", "palette", "scheme", "match", "matches", "matching", "personality", "pop", "cinematic",
    "colors", "colours", "modernize", "modernise", "reimagine", "rework", "recreate", "redo", "jazz", "spice",
    "punch", "punchier", "moodboard",
];

/// Adjectives that describe a whole scene's look or feel.
#[rustfmt::skip]
pub(crate) const CREATIVE_WEAK: &[&str] = &[
    "modern", "energetic", "calm", "calmer", "elegant", "playful", "fun", "funner", "funnier", "professional",
    "minimal", "minimalist", "minimalistic", "retro", "futuristic", "dramatic", "vibrant", "moody", "moodier", "cozy",
    "cozier", "cosy", "cosier", "luxurious", "luxury", "premium", "sleek", "corporate", "friendly", "dynamic",
    "exciting", "lively", "polished", "sophisticated", "whimsical", "edgy", "warmer", "cooler", "darker", "brighter",
    "lighter", "fresh", "fresher", "clean", "cleaner", "boring", "dull", "bland", "techy", "vintage", "neon",
    "grunge", "cute", "serious", "classy", "sporty", "organic", "earthy", "warm", "inviting", "upbeat", "happier",
    "spooky", "festive", "better", "nicer", "prettier", "engaging", "striking", "bolder", "subtle", "subtler",
    "cheerful", "gloomy", "mysterious", "epic", "relaxed", "relaxing", "chill", "intense", "youthful", "mature",
    "simpler", "busy", "cluttered", "flashy", "glamorous", "rustic", "industrial", "natural", "dreamy", "gritty",
    "soft", "softer", "harsher", "brand", "on-brand", "impactful", "exciting", "fancier", "fancy",
];

/// Cues that an edit touches one property of one element.
#[rustfmt::skip]
pub(crate) const SURGICAL_WORDS: &[&str] = &[
    "color", "colour", "text", "font", "fonts", "typeface", "size", "bigger", "smaller", "larger", "big", "small",
    "tiny", "huge", "bold", "italic", "italicize", "underline", "opacity", "transparent", "transparency", "headline",
    "title", "heading", "subtitle", "caption", "label", "labels", "button", "background", "word", "wording", "typo",
    "spelling", "rename", "say", "says", "saying", "read", "reads", "speed", "faster", "slower", "timing", "fade",
    "delay", "brightness", "border", "shadow", "outline", "weight", "uppercase", "lowercase", "capitalize", "price",
    "prices", "logo", "icon", "tagline", "number", "date", "name", "link", "url", "spell", "misspelled", "bolder",
    "thicker", "thinner", "wider", "narrower", "taller", "shorter", "longer", "larger", "increase", "decrease",
    "enlarge", "shrink", "resize", "recolor", "recolour", "underlined", "highlight", "translate", "contrast", "crop",
    "saturation", "saturated", "brightness", "exposure", "hue", "tint", "sharpness", "blur", "volume", "loud",
    "louder", "quieter",
];

/// Base colour words.
#[rustfmt::skip]
pub(crate) const COLOR_WORDS: &[&str] = &[
    "red", "blue", "green", "yellow", "orange", "purple", "pink", "black", "white", "gray", "grey", "brown", "teal",
    "cyan", "magenta", "gold", "golden", "silver", "beige", "navy", "maroon", "turquoise", "violet", "indigo",
    "lavender", "coral", "crimson", "olive", "mint", "peach", "cream", "ivory", "charcoal", "amber", "emerald",
    "ruby", "burgundy", "salmon", "aqua", "lilac", "mustard", "khaki", "tan", "sand", "slate", "rose", "fuchsia",
];

/// Modifiers of a colour word ("dark blue").
#[rustfmt::skip]
pub(crate) const COLOR_MODIFIERS: &[&str] = &[
    "dark", "light", "bright", "deep", "pale", "soft", "pastel", "neon", "hot", "baby", "royal", "sky", "forest",
    "lime", "muted", "warm", "cool", "electric", "dusty", "off", "brand", "our",
];

/// Font families and classes.
#[rustfmt::skip]
pub(crate) const FONT_WORDS: &[&str] = &[
    "serif", "sans", "monospace", "mono", "script", "handwritten", "cursive", "helvetica", "arial", "inter", "roboto",
    "montserrat", "poppins", "lato", "georgia", "garamond", "futura", "verdana", "baskerville", "bodoni", "playfair",
    "raleway", "nunito", "oswald", "merriweather", "courier", "times", "avenir", "gotham", "proxima", "didot",
    "rockwell", "impact", "comic", "ubuntu", "calibri", "cambria", "tahoma", "geometric", "condensed",
];

/// Nouns for an attached image.
#[rustfmt::skip]
pub(crate) const IMAGE_NOUNS: &[&str] = &[
    "image", "images", "picture", "pictures", "pic", "pics", "photo", "photos", "screenshot", "screenshots", "mockup",
    "mockups", "mock", "sketch", "sketches", "drawing", "drawings", "attachment", "attachments", "attached", "upload",
    "uploaded", "file", "files", "reference", "references", "moodboard", "wireframe", "wireframes", "jpg", "png",
    "jpeg", "board", "poster", "inspiration",
];

/// Words that start a question.
#[rustfmt::skip]
pub(crate) const QUESTION_STARTS: &[&str] = &[
    "what", "what's", "whats", "which", "who", "who's", "where", "when", "why", "how", "how's", "is", "are", "does",
    "do", "did", "was", "were", "isn't", "aren't", "any", "anything", "whose",
];

/// Words that mark the mention after them as a reference, not the target
/// ("make the outro look like the intro").
pub(crate) const REFERENCE_MARKERS: &[&str] =
    &["like", "as", "than", "match", "matches", "matching", "resemble", "resembles", "similar", "mirror", "copy"];

/// Words skipped when looking back for a [`REFERENCE_MARKERS`] word.
pub(crate) const DETERMINERS: &[&str] =
    &["the", "a", "an", "this", "that", "these", "those", "my", "our", "your", "of", "to", "in", "one", "same"];

/// Bit flags naming the indexed lists, for [`is`].
pub(crate) mod list {
    pub const ELEMENT_NOUNS: u32 = 1 << 0;
    pub const IMAGE_NOUNS: u32 = 1 << 1;
    pub const SCENE_NOUNS: u32 = 1 << 2;
    pub const NEW_SCENE_NOUNS: u32 = 1 << 3;
    pub const FILLERS: u32 = 1 << 4;
    pub const SURGICAL_WORDS: u32 = 1 << 5;
    pub const CREATIVE_WEAK: u32 = 1 << 6;
    pub const COLOR_WORDS: u32 = 1 << 7;
    pub const STRUCTURAL_WORDS: u32 = 1 << 8;
    pub const FONT_WORDS: u32 = 1 << 9;
    pub const CREATIVE_STRONG: u32 = 1 << 10;
    pub const EDIT_FIX_NOUNS: u32 = 1 << 11;
    pub const BROKEN_WORDS: u32 = 1 << 12;
    pub const ANIMATION_WORDS: u32 = 1 << 13;
}

/// FNV-1a: the index holds a few hundred short, trusted keys, so a fast
/// non-keyed hash is enough (and several times cheaper than SipHash per word).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type Index = HashMap<&'static str, u32, BuildHasherDefault<Fnv>>;

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let lists: [(&[&'static str], u32); 14] = [
        (ELEMENT_NOUNS, list::ELEMENT_NOUNS),
        (IMAGE_NOUNS, list::IMAGE_NOUNS),
        (SCENE_NOUNS, list::SCENE_NOUNS),
        (NEW_SCENE_NOUNS, list::NEW_SCENE_NOUNS),
        (FILLERS, list::FILLERS),
        (SURGICAL_WORDS, list::SURGICAL_WORDS),
        (CREATIVE_WEAK, list::CREATIVE_WEAK),
        (COLOR_WORDS, list::COLOR_WORDS),
        (STRUCTURAL_WORDS, list::STRUCTURAL_WORDS),
        (FONT_WORDS, list::FONT_WORDS),
        (CREATIVE_STRONG, list::CREATIVE_STRONG),
        (EDIT_FIX_NOUNS, list::EDIT_FIX_NOUNS),
        (BROKEN_WORDS, list::BROKEN_WORDS),
        (ANIMATION_WORDS, list::ANIMATION_WORDS),
    ];
    let mut index = Index::default();
    for (words, flag) in lists {
        for &w in words {
            *index.entry(w).or_insert(0) |= flag;
        }
    }
    index
});

/// Whether `word` is in any of the lists in `lists` (flags from [`list`]).
pub(crate) fn is(word: &str, lists: u32) -> bool {
    INDEX.get(word).is_some_and(|f| f & lists != 0)
}
