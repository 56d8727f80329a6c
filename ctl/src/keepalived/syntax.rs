//! keepalived.conf's syntax: keywords with their values, one statement a line, and blocks in
//! braces, read into a tree of [`Statement`]s with their line numbers.
//!
//! As keepalived reads it: words are separated by blanks; `#` and `!` start a comment at
//! the start of a word; `"..."` groups words (keepalived keeps no escapes inside); `{` and
//! `}` are words of their own even when written against another (`url{`), and a block's
//! `{` may stand on the line after its keyword. What keepalived's preprocessor does
//! (`include`, `$VARIABLE` definitions, `@` conditions) is not done here: such a line is
//! refused by name ([`SyntaxError`]) rather than read as something it is not.

use std::fmt;

/// One keyword with its values and, for a block, what is inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// 1-based.
    pub line: usize,
    pub keyword: String,
    pub values: Vec<String>,
    /// `Some` for a block (`real_server ... { ... }`), even an empty one.
    pub block: Option<Vec<Statement>>,
}

/// Why a text is not keepalived.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyntaxError {
    /// A `}` with no block open.
    UnexpectedClose { line: usize },
    /// The end of the file inside a block.
    Unclosed { line: usize, keyword: String },
    /// A `{` with no keyword before it.
    BlockWithoutKeyword { line: usize },
    /// A `"` not closed on its line.
    UnclosedQuote { line: usize },
    /// `include`, `$NAME=...` or an `@` condition: keepalived's preprocessor.
    Preprocessor { line: usize, word: String },
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyntaxError::UnexpectedClose { line } => write!(f, "line {line}: `}}' closes no block (unbalanced braces)"),
            SyntaxError::Unclosed { line, keyword } => {
                write!(f, "line {line}: the block of `{keyword}' is never closed (unbalanced braces)")
            }
            SyntaxError::BlockWithoutKeyword { line } => write!(f, "line {line}: `{{' without a keyword before it"),
            SyntaxError::UnclosedQuote { line } => write!(f, "line {line}: a quoted string is not closed on its line"),
            SyntaxError::Preprocessor { line, word } if word == "include" => write!(
                f,
                "line {line}: `include' is not supported: gwctl reads one file (put the included \
                 virtual_server blocks in it)"
            ),
            SyntaxError::Preprocessor { line, word } => {
                write!(f, "line {line}: `{word}': keepalived's variables and conditions (`$', `@') are not supported")
            }
        }
    }
}

impl std::error::Error for SyntaxError {}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    EndOfLine,
}

/// The tokens of a text, each with its line.
fn tokens(text: &str) -> Result<Vec<(usize, Token)>, SyntaxError> {
    let mut out = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let mut chars = raw.chars().peekable();
        let mut word = String::new();
        // A word in progress: a quoted empty string ("") is a word too.
        let mut in_word = false;
        let end_word = |word: &mut String, in_word: &mut bool, out: &mut Vec<(usize, Token)>| {
            if *in_word {
                out.push((line, Token::Word(std::mem::take(word))));
                *in_word = false;
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    in_word = true;
                    loop {
                        match chars.next() {
                            Some('"') => break,
                            Some(c) => word.push(c),
                            None => return Err(SyntaxError::UnclosedQuote { line }),
                        }
                    }
                }
                '#' | '!' if !in_word => break,
                '{' | '}' => {
                    end_word(&mut word, &mut in_word, &mut out);
                    out.push((line, if c == '{' { Token::Open } else { Token::Close }));
                }
                c if c.is_whitespace() => end_word(&mut word, &mut in_word, &mut out),
                c => {
                    in_word = true;
                    word.push(c);
                }
            }
        }
        end_word(&mut word, &mut in_word, &mut out);
        out.push((line, Token::EndOfLine));
    }
    Ok(out)
}

/// Reads a whole keepalived.conf.
pub fn parse(text: &str) -> Result<Vec<Statement>, SyntaxError> {
    let tokens = tokens(text)?;
    let mut at = 0;
    let statements = block(&tokens, &mut at, None)?;
    Ok(statements)
}

/// The statements up to the `}` closing `opened` (the keyword and line of the block), or to
/// the end of the text at the top level.
fn block(
    tokens: &[(usize, Token)],
    at: &mut usize,
    opened: Option<(usize, &str)>,
) -> Result<Vec<Statement>, SyntaxError> {
    let mut statements = Vec::new();
    while let Some((line, token)) = tokens.get(*at) {
        let line = *line;
        *at += 1;
        match token {
            Token::EndOfLine => {}
            Token::Close => {
                return match opened {
                    Some(_) => Ok(statements),
                    None => Err(SyntaxError::UnexpectedClose { line }),
                }
            }
            Token::Open => return Err(SyntaxError::BlockWithoutKeyword { line }),
            Token::Word(keyword) => {
                if keyword == "include" || keyword.starts_with('$') || keyword.starts_with('@') {
                    return Err(SyntaxError::Preprocessor { line, word: keyword.clone() });
                }
                let mut values = Vec::new();
                while let Some((_, Token::Word(w))) = tokens.get(*at) {
                    values.push(w.clone());
                    *at += 1;
                }
                // The block's `{`, on this line or the next ones.
                let mut look = *at;
                while let Some((_, Token::EndOfLine)) = tokens.get(look) {
                    look += 1;
                }
                let inner = if let Some((_, Token::Open)) = tokens.get(look) {
                    *at = look + 1;
                    Some(block(tokens, at, Some((line, keyword)))?)
                } else {
                    None
                };
                statements.push(Statement { line, keyword: keyword.clone(), values, block: inner });
            }
        }
    }
    match opened {
        Some((line, keyword)) => Err(SyntaxError::Unclosed { line, keyword: keyword.to_string() }),
        None => Ok(statements),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(line: usize, keyword: &str, values: &[&str]) -> Statement {
        Statement { line, keyword: keyword.into(), values: values.iter().map(|v| v.to_string()).collect(), block: None }
    }

    #[test]
    fn blocks_comments_quotes_and_lines() {
        let text = "! Configuration File for keepalived\n\
                    virtual_server 10.0.0.100 80 # the web\n\
                    {\n\
                    \x20   lvs_sched rr\n\
                    \x20   real_server 192.168.1.10 80 {\n\
                    \x20       MISC_CHECK { misc_path \"/bin/check web\" }\n\
                    \x20   }\n\
                    \x20   empty {}\n\
                    }\n";
        let parsed = parse(text).unwrap();
        assert_eq!(
            parsed,
            vec![Statement {
                line: 2,
                keyword: "virtual_server".into(),
                values: vec!["10.0.0.100".into(), "80".into()],
                block: Some(vec![
                    leaf(4, "lvs_sched", &["rr"]),
                    Statement {
                        line: 5,
                        keyword: "real_server".into(),
                        values: vec!["192.168.1.10".into(), "80".into()],
                        block: Some(vec![Statement {
                            line: 6,
                            keyword: "MISC_CHECK".into(),
                            values: vec![],
                            block: Some(vec![leaf(6, "misc_path", &["/bin/check web"])]),
                        }]),
                    },
                    Statement { line: 8, keyword: "empty".into(), values: vec![], block: Some(vec![]) },
                ]),
            }]
        );
        // `#` and `!` inside a word or a quote are the word's.
        assert_eq!(parse("a b#c \"d!e\" ! gone\n").unwrap(), vec![leaf(1, "a", &["b#c", "d!e"])]);
    }

    #[test]
    fn unbalanced_braces_and_preprocessing_are_named_with_their_line() {
        for (text, message) in [
            ("a {\n b 1\n", "line 1: the block of `a' is never closed (unbalanced braces)"),
            ("a {\n}\n}\n", "line 3: `}' closes no block (unbalanced braces)"),
            ("{\n}\n", "line 1: `{' without a keyword before it"),
            ("a \"b\n", "line 1: a quoted string is not closed on its line"),
            ("\n include /etc/keepalived/lvs.conf\n", "line 2: `include' is not supported"),
            ("$PORT=80\n", "line 1: `$PORT=80': keepalived's variables and conditions"),
        ] {
            let got = parse(text).unwrap_err().to_string();
            assert!(got.starts_with(message), "{text:?}: {got}");
        }
    }
}
