//! Splits a prompt into tokens: lowercase words, numbers, quoted text and
//! punctuation, each with its byte span in the original prompt.
//!
//! Hand-written rather than regex-based: one pass over the prompt, no
//! compilation, and the quote and apostrophe rules ("it's" versus
//! `'Ship faster'`) are easier to get right by hand.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Letters and digits, lowercased ("intro", "2nd", "5s", "#ff0000").
    Word,
    /// A plain number ("2", "1.5"); its value is in [`Token::number`].
    Number,
    /// Text between quotes; [`Token::text`] keeps the original case.
    Quote,
    /// One punctuation mark: `, ; . ! ? : ( ) - %`.
    Punct,
}

/// One token of a prompt.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Kind,
    /// Lowercase word, the number as written, the quoted text, or the mark.
    pub text: String,
    /// The word singularised and without a possessive ("scenes" → "scene").
    pub stem: String,
    /// Value of a [`Kind::Number`].
    pub number: Option<f64>,
    /// Byte offset of the token's first character in the prompt.
    pub start: usize,
    /// Byte offset just past the token.
    pub end: usize,
}

impl Token {
    /// Whether the token is this word.
    pub fn is(&self, word: &str) -> bool {
        self.kind == Kind::Word && self.text == word
    }

    /// Whether the token is one of these words.
    pub fn is_any(&self, words: &[&str]) -> bool {
        self.kind == Kind::Word && words.contains(&self.text.as_str())
    }

    /// Whether the token is this punctuation mark.
    pub fn is_punct(&self, mark: char) -> bool {
        self.kind == Kind::Punct && self.text.starts_with(mark)
    }

    /// Whether the token is a word or a number (something a name can contain).
    pub fn is_wordlike(&self) -> bool {
        matches!(self.kind, Kind::Word | Kind::Number)
    }
}

fn is_apostrophe(c: char) -> bool {
    c == '\'' || c == '’'
}

/// Tokenizes a prompt.
pub(crate) fn tokenize(prompt: &str) -> Vec<Token> {
    let chars: Vec<(usize, char)> = prompt.char_indices().collect();
    let byte_at = |i: usize| chars.get(i).map(|&(b, _)| b).unwrap_or(prompt.len());
    let char_at = |i: usize| chars.get(i).map(|&(_, c)| c);
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = char_at(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if let Some(close) = quote_close(&chars, i) {
            let inner_start = byte_at(i + 1);
            let inner_end = byte_at(close);
            let inner = prompt.get(inner_start..inner_end).unwrap_or("").trim().to_string();
            tokens.push(Token {
                kind: Kind::Quote,
                stem: inner.to_lowercase(),
                text: inner,
                number: None,
                start: byte_at(i),
                end: byte_at(close + 1),
            });
            i = close + 1;
            continue;
        }
        let next_is_digit = char_at(i + 1).is_some_and(|n| n.is_ascii_digit());
        let prev_is_alnum = i > 0 && char_at(i - 1).is_some_and(|p| p.is_alphanumeric());
        // ".5 seconds" is a number; "intro. 5" ends a sentence.
        let leading_point = c == '.' && next_is_digit && !prev_is_alnum;
        let starts_word =
            c.is_alphanumeric() || leading_point || (c == '#' && char_at(i + 1).is_some_and(|n| n.is_alphanumeric()));
        if starts_word {
            let begin = i;
            i += 1;
            while let Some(c) = char_at(i) {
                let prev = char_at(i - 1);
                let next = char_at(i + 1);
                let keep = c.is_alphanumeric()
                    || c == '_'
                    || (is_apostrophe(c)
                        && prev.is_some_and(|p| p.is_alphanumeric())
                        && next.is_some_and(|n| n.is_alphabetic()))
                    || (c == '.'
                        && prev.is_some_and(|p| p.is_ascii_digit())
                        && next.is_some_and(|n| n.is_ascii_digit()));
                if !keep {
                    break;
                }
                i += 1;
            }
            let raw = prompt.get(byte_at(begin)..byte_at(i)).unwrap_or("");
            let text = raw.to_lowercase().replace('’', "'");
            let number = parse_plain_number(&text);
            tokens.push(Token {
                kind: if number.is_some() { Kind::Number } else { Kind::Word },
                stem: stem(&text),
                text,
                number,
                start: byte_at(begin),
                end: byte_at(i),
            });
            continue;
        }
        // A hyphen inside a word ("5-second", "sans-serif") only separates.
        if c == '-' && i > 0 && char_at(i - 1).is_some_and(|p| p.is_alphanumeric()) {
            i += 1;
            continue;
        }
        let mark = match c {
            ',' | ';' | '.' | '!' | '?' | ':' | '(' | ')' => Some(c),
            '-' | '–' | '—' => Some('-'),
            '%' => Some('%'),
            _ => None,
        };
        if let Some(mark) = mark {
            tokens.push(Token {
                kind: Kind::Punct,
                text: mark.to_string(),
                stem: mark.to_string(),
                number: None,
                start: byte_at(i),
                end: byte_at(i + 1),
            });
        }
        i += 1;
    }
    tokens
}

/// If a quotation opens at `i`, the index of the character that closes it.
fn quote_close(chars: &[(usize, char)], i: usize) -> Option<usize> {
    let c = chars.get(i)?.1;
    let prev = i.checked_sub(1).and_then(|p| chars.get(p)).map(|&(_, c)| c);
    let next = chars.get(i + 1).map(|&(_, c)| c);
    let closers: &[char] = match c {
        '"' => &['"', '”'],
        '“' => &['”', '"'],
        '«' => &['»'],
        '\'' | '‘' => {
            // An apostrophe inside a word ("it's") or a dangling one opens nothing.
            if prev.is_some_and(|p| p.is_alphanumeric()) || next.is_none_or(|n| n.is_whitespace()) {
                return None;
            }
            &['\'', '’']
        }
        _ => return None,
    };
    let single = matches!(c, '\'' | '‘');
    (i + 1..chars.len()).find(|&j| {
        let Some(&(_, cj)) = chars.get(j) else { return false };
        if !closers.contains(&cj) {
            return false;
        }
        if !single {
            return true;
        }
        // A single-quote closer ends a word and is not followed by a letter
        // ("'Ship faster'" closes, "doesn't" does not).
        let before = chars.get(j - 1).map(|&(_, c)| c);
        let after = chars.get(j + 1).map(|&(_, c)| c);
        before.is_some_and(|b| !b.is_whitespace()) && after.is_none_or(|a| !a.is_alphanumeric())
    })
}

fn parse_plain_number(text: &str) -> Option<f64> {
    let mut dots = 0;
    for c in text.chars() {
        match c {
            '0'..='9' => {}
            '.' => dots += 1,
            _ => return None,
        }
    }
    if dots > 1 || text == "." {
        return None;
    }
    if text.starts_with('.') {
        return format!("0{text}").parse().ok();
    }
    text.parse().ok()
}

/// Singularises and strips a possessive, so "Testimonials" matches
/// "testimonial" and "intro's" matches "intro". Crude on purpose: it only
/// has to map both sides of a comparison to the same form.
pub(crate) fn stem(word: &str) -> String {
    let w = word.strip_suffix("'s").or_else(|| word.strip_suffix("s'")).unwrap_or(word);
    let n = w.chars().count();
    if n > 4 && w.ends_with("ies") {
        return format!("{}y", &w[..w.len() - 3]);
    }
    if n > 4 && (w.ends_with("ches") || w.ends_with("shes") || w.ends_with("sses") || w.ends_with("xes")) {
        return w[..w.len() - 2].to_string();
    }
    if n > 3 && w.ends_with('s') && !w.ends_with("ss") && !w.ends_with("us") && !w.ends_with("is") {
        return w[..w.len() - 1].to_string();
    }
    w.to_string()
}

/// Value of a number word ("five", "twenty"); "a"/"an" are handled by callers.
pub(crate) fn word_number(word: &str) -> Option<f64> {
    let v = match word {
        "zero" => 0.0,
        "one" => 1.0,
        "two" => 2.0,
        "three" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "eleven" => 11.0,
        "twelve" => 12.0,
        "thirteen" => 13.0,
        "fourteen" => 14.0,
        "fifteen" => 15.0,
        "sixteen" => 16.0,
        "seventeen" => 17.0,
        "eighteen" => 18.0,
        "nineteen" => 19.0,
        "twenty" => 20.0,
        "thirty" => 30.0,
        "forty" => 40.0,
        "fifty" => 50.0,
        "sixty" => 60.0,
        "seventy" => 70.0,
        "eighty" => 80.0,
        "ninety" => 90.0,
        _ => return None,
    };
    Some(v)
}

/// 1-based value of an ordinal word or suffix form ("second", "2nd", "4th").
pub(crate) fn ordinal_value(word: &str) -> Option<usize> {
    let v = match word {
        "first" => 1,
        "second" => 2,
        "third" => 3,
        "fourth" => 4,
        "fifth" => 5,
        "sixth" => 6,
        "seventh" => 7,
        "eighth" => 8,
        "ninth" => 9,
        "tenth" => 10,
        "eleventh" => 11,
        "twelfth" => 12,
        _ => {
            let digits: String = word.chars().take_while(|c| c.is_ascii_digit()).collect();
            let suffix = &word[digits.len()..];
            if digits.is_empty() || !matches!(suffix, "st" | "nd" | "rd" | "th") {
                return None;
            }
            return digits.parse().ok().filter(|&n: &usize| n > 0);
        }
    };
    Some(v)
}

/// Edit distance with adjacent transpositions (optimal string alignment),
/// stopping early once it exceeds `max`.
pub(crate) fn within_edit_distance(a: &str, b: &str, max: usize) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    if a.len().abs_diff(b.len()) > max {
        return false;
    }
    let w = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * w];
    for (j, cell) in d.iter_mut().enumerate().take(w) {
        *cell = j;
    }
    for i in 1..=a.len() {
        d[i * w] = i;
        let mut row_min = usize::MAX;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[(i - 1) * w + j] + 1).min(d[i * w + j - 1] + 1).min(d[(i - 1) * w + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[(i - 2) * w + j - 2] + 1);
            }
            d[i * w + j] = v;
            row_min = row_min.min(v);
        }
        if row_min > max {
            return false;
        }
    }
    d[a.len() * w + b.len()] <= max
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(p: &str) -> Vec<String> {
        tokenize(p).into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn words_numbers_and_punctuation() {
        assert_eq!(texts("Make scene 2 1.5s, then STOP."), ["make", "scene", "2", "1.5s", ",", "then", "stop", "."]);
        let t = tokenize("shorten it to 2.5 seconds");
        assert_eq!(t[3].kind, Kind::Number);
        assert_eq!(t[3].number, Some(2.5));
        assert_eq!(tokenize("make it .5 seconds")[2].number, Some(0.5));
        assert_eq!(texts("delete the intro. 5 seconds"), ["delete", "the", "intro", ".", "5", "seconds"]);
    }

    #[test]
    fn quotes_versus_apostrophes() {
        let t = tokenize("change the headline in scene 2 to 'Ship faster' and it's done");
        let quote: Vec<_> = t.iter().filter(|t| t.kind == Kind::Quote).collect();
        assert_eq!(quote.len(), 1);
        assert_eq!(quote[0].text, "Ship faster");
        assert!(t.iter().any(|t| t.text == "it's"));
        let t = tokenize("the testimonials scene doesn't render, it's broken");
        assert!(t.iter().all(|t| t.kind != Kind::Quote));
        assert!(t.iter().any(|t| t.text == "doesn't"));
        let t = tokenize("rename it to “Welcome” please");
        assert_eq!(t.iter().find(|t| t.kind == Kind::Quote).map(|t| t.text.as_str()), Some("Welcome"));
    }

    #[test]
    fn hyphens_split_words() {
        assert_eq!(
            texts("a 5-second sans-serif second-to-last"),
            ["a", "5", "second", "sans", "serif", "second", "to", "last"]
        );
    }

    #[test]
    fn stems() {
        assert_eq!(stem("testimonials"), "testimonial");
        assert_eq!(stem("intro's"), "intro");
        assert_eq!(stem("stories"), "story");
        assert_eq!(stem("boxes"), "box");
        assert_eq!(stem("this"), "this");
        assert_eq!(stem("status"), "status");
        assert_eq!(stem("class"), "class");
    }

    #[test]
    fn ordinals() {
        assert_eq!(ordinal_value("second"), Some(2));
        assert_eq!(ordinal_value("2nd"), Some(2));
        assert_eq!(ordinal_value("11th"), Some(11));
        assert_eq!(ordinal_value("2x"), None);
        assert_eq!(ordinal_value("th"), None);
    }

    #[test]
    fn edit_distance() {
        assert!(within_edit_distance("delet", "delete", 1));
        assert!(within_edit_distance("chnage", "change", 1));
        assert!(within_edit_distance("testimonal", "testimonial", 1));
        assert!(!within_edit_distance("render", "remove", 1));
        assert!(!within_edit_distance("a", "abc", 1));
    }
}
