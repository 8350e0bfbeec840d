//! Word lists preferences are read with (see `decide::preferences`):
//! the phrases that make a sentence a statement of taste, and for each
//! preference key the nouns that say a sentence is about it and the values
//! it can take. Lowercase, matched against [`Token::text`](crate::text::lexer::Token).

/// Phrases that state a dislike ("I don't like", "avoid").
pub(crate) const DISLIKE_PHRASES: &[&[&str]] = &[
    &["don't", "like"],
    &["dont", "like"],
    &["do", "not", "like"],
    &["don't", "want"],
    &["dont", "want"],
    &["don't", "use"],
    &["hate"],
    &["dislike"],
    &["avoid"],
    &["never", "use"],
    &["no", "more"],
    &["not", "a", "fan", "of"],
];

/// Phrases that state a lasting taste ("I prefer", "always", "our brand").
pub(crate) const STATED_PHRASES: &[&[&str]] = &[
    &["i", "like"],
    &["i", "love"],
    &["i", "prefer"],
    &["i'd", "prefer"],
    &["we", "prefer"],
    &["we", "like"],
    &["we", "love"],
    &["i", "really", "like"],
    &["i", "always", "want"],
    &["fan", "of"],
    &["always"],
    &["from", "now", "on"],
    &["going", "forward"],
    &["by", "default"],
    &["in", "general"],
    &["generally"],
    &["our", "brand"],
    &["my", "brand"],
    &["brand", "color"],
    &["brand", "colors"],
    &["brand", "colour"],
    &["my", "style"],
    &["our", "style"],
    &["preferably"],
    &["i", "want", "all"],
    &["i", "want", "every"],
    &["should", "always"],
];

/// Phrases that make an instruction project-wide ("keep it", "every scene").
pub(crate) const PROJECT_WIDE_PHRASES: &[&[&str]] = &[
    &["keep", "it"],
    &["keep", "things"],
    &["keep", "everything"],
    &["keep", "the", "video"],
    // "keep the pace fast", "keep the style minimal": an aspect of the whole video.
    &["keep", "the", "pace"],
    &["keep", "the", "pacing"],
    &["keep", "the", "style"],
    &["keep", "the", "tone"],
    &["keep", "the", "mood"],
    &["keep", "the", "look"],
    &["keep", "the", "colors"],
    &["keep", "the", "colours"],
    &["keep", "the", "music"],
    &["keep", "all"],
    &["keep", "scenes"],
    &["keep", "the", "scenes"],
    &["make", "everything"],
    &["everything", "should"],
    &["all", "scenes"],
    &["all", "the", "scenes"],
    &["every", "scene"],
    &["each", "scene"],
    &["throughout"],
    &["overall"],
    &["whole", "video"],
    &["stick", "to"],
    &["stick", "with"],
    &["use", "our"],
    &["consistently"],
    &["let's", "go", "with"],
    &["everywhere"],
    &["we", "want"],
    &["i", "want"],
    &["we", "need"],
    &["should", "be"],
    &["needs", "to", "be"],
];

/// Scene kinds that make a sentence about one scene ("the intro").
pub(crate) const SCENE_KINDS: &[&str] =
    &["intro", "outro", "introduction", "ending", "credits", "hook", "opener", "closer", "finale"];

/// Words for a scene, which a determiner or a number makes one scene ("this scene", "slide 2").
pub(crate) const SCENE_WORDS: &[&str] = &["scene", "slide"];

/// Words before a [`SCENE_WORDS`] word that make it one scene.
pub(crate) const SCENE_DETERMINERS: &[&str] = &["this", "that", "the", "first", "last", "second", "third"];

/// Words before the verb of an edit instruction ("please make ...").
pub(crate) const EDIT_FILLERS: &[&str] =
    &["please", "can", "could", "you", "now", "just", "ok", "okay", "and", "also", "then", "so"];

/// Verbs that start an edit instruction ("make the intro blue").
#[rustfmt::skip]
pub(crate) const EDIT_VERBS: &[&str] = &[
    "make", "change", "set", "use", "give", "turn", "apply", "switch", "recolor", "recolour", "paint", "update",
    "restyle", "redesign", "add",
];

/// Style words and the style they name ("minimalist" → "minimal").
pub(crate) const STYLE: &[(&str, &str)] = &[
    ("minimal", "minimal"),
    ("minimalist", "minimal"),
    ("minimalistic", "minimal"),
    ("simple", "minimal"),
    ("modern", "modern"),
    ("retro", "retro"),
    ("vintage", "vintage"),
    ("corporate", "corporate"),
    ("playful", "playful"),
    ("cinematic", "cinematic"),
    ("clean", "clean"),
    ("flat", "flat"),
    ("futuristic", "futuristic"),
    ("elegant", "elegant"),
    ("sleek", "sleek"),
    ("grunge", "grunge"),
    ("cartoon", "cartoon"),
    ("cartoony", "cartoon"),
    ("cartoonish", "cartoon"),
    ("isometric", "isometric"),
    ("brutalist", "brutalist"),
    ("geometric", "geometric"),
    ("luxurious", "luxury"),
    ("luxury", "luxury"),
    ("premium", "premium"),
    ("techy", "techy"),
    ("editorial", "editorial"),
    ("colorful", "colorful"),
    ("colourful", "colorful"),
    ("neon", "neon"),
    ("professional", "professional"),
    ("bold", "bold"),
    ("3d", "3d"),
];

/// Moods a video can have.
#[rustfmt::skip]
pub(crate) const MOOD: &[&str] = &[
    "energetic", "calm", "upbeat", "dramatic", "serious", "cheerful", "moody", "warm", "cozy", "inspiring",
    "exciting", "chill", "peaceful", "intense", "fun", "happy", "mysterious", "uplifting", "relaxed", "relaxing",
    "dynamic", "lively", "joyful", "optimistic", "emotional", "epic", "dreamy", "bright",
];

/// Tones of the copy.
#[rustfmt::skip]
pub(crate) const TONE: &[&str] = &[
    "formal", "casual", "friendly", "professional", "humorous", "funny", "witty", "conversational", "authoritative",
    "playful", "serious", "sarcastic", "informal", "warm", "direct", "concise", "technical",
];

/// Colour words a preference can name.
#[rustfmt::skip]
pub(crate) const COLORS: &[&str] = &[
    "red", "blue", "green", "yellow", "orange", "purple", "pink", "black", "white", "gray", "grey", "brown", "teal",
    "cyan", "magenta", "gold", "golden", "silver", "beige", "navy", "maroon", "turquoise", "violet", "indigo",
    "lavender", "coral", "crimson", "olive", "mint", "peach", "cream", "ivory", "charcoal", "amber", "emerald",
    "burgundy", "pastel", "pastels", "monochrome", "monochromatic", "earthy", "muted", "vibrant", "neutral",
];

/// Words that qualify a colour ("dark blue", "brand blue").
#[rustfmt::skip]
pub(crate) const COLOR_MODIFIERS: &[&str] = &[
    "dark", "light", "bright", "deep", "pale", "soft", "pastel", "neon", "warm", "cool", "muted", "brand", "navy",
    "royal", "sky", "forest",
];

/// Font families and classes a font preference can name.
#[rustfmt::skip]
pub(crate) const FONTS: &[&str] = &[
    "serif", "monospace", "mono", "script", "handwritten", "cursive", "rounded", "helvetica", "arial", "inter",
    "roboto", "montserrat", "poppins", "lato", "georgia", "garamond", "futura", "verdana", "baskerville", "bodoni",
    "playfair", "raleway", "nunito", "oswald", "merriweather", "courier", "avenir", "gotham", "didot", "rockwell",
    "condensed", "bold", "thin", "light", "geometric",
];

/// Music styles ("lo" and "hip" start "lo fi" and "hip hop").
#[rustfmt::skip]
pub(crate) const MUSIC: &[&str] = &[
    "upbeat", "lofi", "lo", "ambient", "calm", "epic", "cinematic", "electronic", "acoustic", "piano", "jazz",
    "jazzy", "classical", "rock", "corporate", "chill", "orchestral", "energetic", "synthwave", "hip",
];

/// Animation and transition styles.
#[rustfmt::skip]
pub(crate) const ANIMATION: &[&str] = &[
    "smooth", "subtle", "minimal", "snappy", "bouncy", "dynamic", "slow", "fast", "quick", "gentle", "playful",
    "simple",
];

/// Languages the copy can be written in.
#[rustfmt::skip]
pub(crate) const LANGUAGES: &[&str] = &[
    "english", "spanish", "french", "german", "italian", "portuguese", "dutch", "japanese", "chinese", "korean",
    "arabic", "hindi", "russian", "polish", "swedish", "turkish",
];

/// Aspect ratios a format preference can name ("9:16").
pub(crate) const ASPECT_RATIOS: &[&str] = &["16:9", "9:16", "1:1", "4:5", "4:3", "3:4", "21:9", "2:3", "3:2"];

/// Nouns that make "vertical" or "square" a format ("vertical video").
pub(crate) const FORMAT_NOUNS: &[&str] =
    &["video", "videos", "format", "aspect", "ratio", "orientation", "posts", "post", "layout"];

/// Orientation words for a 9:16 format.
pub(crate) const PORTRAIT_WORDS: &[&str] = &["vertical", "portrait"];

/// Platforms whose format is 9:16 whatever the wording ("for tiktok").
pub(crate) const PORTRAIT_PLATFORMS: &[&str] = &["tiktok", "reels", "shorts", "stories"];

/// Orientation words for a 1:1 format.
pub(crate) const SQUARE_WORDS: &[&str] = &["square"];

/// Orientation words for a 16:9 format.
pub(crate) const LANDSCAPE_WORDS: &[&str] = &["widescreen", "landscape", "horizontal"];

/// Nouns a pace needs ("fast-paced", "quick cuts", "a slow tempo").
pub(crate) const PACE_NOUNS: &[&str] = &["pace", "paced", "pacing", "tempo", "cuts", "rhythm"];

/// Phrases that are about pace without a pace noun ("keep it snappy").
pub(crate) const PACE_PHRASES: &[&[&str]] = &[&["keep", "it", "fast"], &["keep", "it", "snappy"]];

/// Words for a fast pace.
pub(crate) const FAST_WORDS: &[&str] = &["fast", "quick", "snappy", "brisk", "rapid", "punchy", "faster", "quicker"];

/// Words for a slow pace.
pub(crate) const SLOW_WORDS: &[&str] = &["slow", "slower", "relaxed", "leisurely", "gentle", "calm"];

/// Words for a moderate pace.
pub(crate) const MODERATE_WORDS: &[&str] = &["moderate", "medium", "steady", "balanced"];

/// Nouns that make a length a scene length ("5 second scenes").
pub(crate) const SCENE_NOUNS: &[&str] = &["scene", "scenes", "slide", "slides", "clip", "clips", "shot", "shots"];

/// Nouns that make a length the whole video's ("keep the video under 30 seconds").
pub(crate) const VIDEO_NOUNS: &[&str] = &["video", "videos", "whole", "total", "overall"];

/// Lengths stated without a number ("short scenes").
pub(crate) const LENGTH_WORDS: &[&str] = &["short", "shorter", "brief", "long", "longer"];

/// Words before a length that bound it, and the bound ("under 5 seconds").
pub(crate) const LENGTH_QUALIFIERS: &[(&str, &str)] = &[
    ("under", "under "),
    ("below", "under "),
    ("max", "under "),
    ("maximum", "under "),
    ("most", "under "),
    ("than", "under "),
    ("within", "under "),
    ("over", "over "),
    ("least", "over "),
    ("around", "about "),
    ("about", "about "),
    ("roughly", "about "),
    ("approximately", "about "),
    ("~", "about "),
];

/// Nouns that make a word a font preference ("serif fonts").
pub(crate) const FONT_NOUNS: &[&str] = &["font", "fonts", "typeface", "typefaces", "typography", "type", "lettering"];

/// Font family names, a font preference even without a font noun.
#[rustfmt::skip]
pub(crate) const FONT_FAMILIES: &[&str] = &[
    "helvetica", "arial", "inter", "roboto", "montserrat", "poppins", "lato", "georgia", "garamond", "futura",
    "verdana", "baskerville", "bodoni", "playfair", "raleway", "nunito", "oswald", "merriweather", "courier",
    "avenir", "gotham", "didot", "rockwell",
];

/// Spellings of the sans-serif class ("sans", "sans-serif").
pub(crate) const SANS_WORDS: &[&str] = &["sans", "sans-serif"];

/// Nouns that make a colour or shade a background preference.
pub(crate) const BACKGROUND_NOUNS: &[&str] = &["background", "backgrounds", "bg"];

/// Background looks other than a colour ("dark backgrounds", "gradients").
#[rustfmt::skip]
pub(crate) const BACKGROUND_LOOKS: &[&str] = &[
    "dark", "darker", "light", "lighter", "gradient", "gradients", "plain", "textured", "transparent", "blurred",
];

/// Background looks stored under another spelling ("gradients" → "gradient").
pub(crate) const BACKGROUND_LOOK_SPELLINGS: &[(&str, &str)] =
    &[("darker", "dark"), ("lighter", "light"), ("gradients", "gradient")];

/// Nouns that make "dark" or "light" a theme ("dark mode").
pub(crate) const THEME_NOUNS: &[&str] = &["mode", "theme"];

/// Themes a theme noun can name.
pub(crate) const THEMES: &[&str] = &["dark", "light"];

/// Comparatives that set a theme project-wide ("make everything darker").
pub(crate) const THEME_SHIFTS: &[&str] = &["darker", "lighter", "brighter"];

/// Nouns that make a colour a palette preference.
pub(crate) const COLOR_NOUNS: &[&str] = &["color", "colors", "colour", "colours", "palette", "tones"];

/// Words that make a colour a palette preference even in a one-off edit ("brand blue").
pub(crate) const BRAND_NOUNS: &[&str] = &["brand"];

/// Colour phrases stored under another spelling ("pastels" → "pastel").
pub(crate) const COLOR_SPELLINGS: &[(&str, &str)] = &[("pastels", "pastel"), ("monochromatic", "monochrome")];

/// Words that name a palette with a following [`PALETTE_NOUNS`] word ("warm tones").
pub(crate) const PALETTE_TEMPERATURES: &[&str] = &["warm", "cool", "earthy", "muted"];

/// Nouns after a [`PALETTE_TEMPERATURES`] word.
pub(crate) const PALETTE_NOUNS: &[&str] = &["tones", "colors", "colours", "palette"];

/// Nouns that make a word a tone of the copy ("a friendly tone").
pub(crate) const TONE_NOUNS: &[&str] =
    &["tone", "voice", "copy", "wording", "writing", "text", "captions", "messaging", "language"];

/// Nouns that make a word a music preference.
pub(crate) const MUSIC_NOUNS: &[&str] = &["music", "soundtrack", "song", "songs", "track", "beat", "beats", "audio"];

/// Phrases that ask for no music at all.
pub(crate) const NO_MUSIC_PHRASES: &[&[&str]] = &[&["no", "music"], &["without", "music"]];

/// Music styles stored under one spelling: "lo fi" and "lofi" are "lo-fi".
/// The first word of a two-word spelling is in [`MUSIC`]; alone it names nothing.
pub(crate) const MUSIC_SPELLINGS: &[(&[&str], &str)] =
    &[(&["lo", "fi"], "lo-fi"), (&["hip", "hop"], "hip hop"), (&["lofi"], "lo-fi"), (&["jazzy"], "jazz")];

/// Nouns that make a word an animation preference.
pub(crate) const ANIMATION_NOUNS: &[&str] = &["animation", "animations", "transition", "transitions", "motion"];

/// Phrases that ask for no animation at all.
pub(crate) const NO_ANIMATION_PHRASES: &[&[&str]] = &[&["no", "animations"], &["no", "animation"]];

/// Nouns that make a language name a language preference without "in" ("Spanish language").
pub(crate) const LANGUAGE_NOUNS: &[&str] = &["language"];

/// Layout and decoration cues and the design value each names.
pub(crate) const DESIGN_CUES: &[(&[&str], &str)] = &[
    (&["rounded", "corners"], "rounded corners"),
    (&["white", "space"], "lots of white space"),
    (&["whitespace"], "lots of white space"),
    (&["drop", "shadows"], "drop shadows"),
    (&["shadows"], "shadows"),
    (&["gradients"], "gradients"),
    (&["flat", "design"], "flat design"),
    (&["glassmorphism"], "glassmorphism"),
    (&["illustrations"], "illustrations"),
    (&["icons"], "icons"),
    (&["photos"], "photos"),
    (&["photography"], "photos"),
    (&["grid", "layouts"], "grid layouts"),
    (&["big", "typography"], "big typography"),
    (&["large", "text"], "large text"),
];

/// Nouns that make a mood word a mood preference even in a one-off edit.
pub(crate) const MOOD_NOUNS: &[&str] = &["mood", "feel", "feeling", "vibe", "vibes", "atmosphere", "energy"];

/// Words after which the rest of a sentence is not preferred ("serif instead of sans").
pub(crate) const EXCLUSIONS: &[&str] = &["instead", "rather", "except", "unlike"];

/// Words that make a statement more certain ("I really like ...").
pub(crate) const INTENSIFIERS: &[&str] = &["really", "definitely", "strongly", "absolutely", "must", "always"];

/// Punctuation that ends a sentence; each sentence states its preferences on its own.
pub(crate) const SENTENCE_ENDS: &[&str] = &[".", "!", "?", ";"];
