//! Word-like text, names and subjects for generated messages: pronounceable syllable words
//! (so indexers and FTS see word-shaped tokens, unlike random bytes) with a sprinkling of
//! non-ASCII words, names and subjects in several scripts.

use rand::{Rng, RngExt};
use rand_pcg::Pcg32;

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "ra", "to", "ve", "su", "bri", "gan", "del", "mor", "tis", "pla",
    "quen", "dor", "sha", "lin", "ber", "con", "ex", "al", "um", "or", "par", "ti", "men", "est",
];
const NON_ASCII_WORDS: &[&str] = &[
    "café",
    "naïve",
    "Grüße",
    "smörgåsbord",
    "déjà",
    "façade",
    "Ærø",
    "žluťoučký",
    "año",
    "crème",
    "Überprüfung",
    "fjørd",
    "résumé",
    "日本語",
    "привет",
];
pub(super) const NON_ASCII_SUBJECTS: &[&str] = &[
    "Réunion d'équipe:",
    "Grüße aus München –",
    "Ответ:",
    "Presupuesto año",
    "会議の件",
    "Smørrebrød &",
    "Zażółć gęślą",
];
const PEOPLE: &[&str] = &[
    "Alice Archer",
    "Bob Baker",
    "Carol Chen",
    "Dave Dunn",
    "Erin Ellis",
    "Frank Ford",
    "Grace Gill",
    "Heidi Hart",
    "Ivan Innes",
    "Judy Jones",
];
const NON_ASCII_PEOPLE: &[&str] = &[
    "Zoë Müller",
    "Søren Ødegård",
    "José Núñez",
    "Łukasz Żółw",
    "Zoltán Erdős",
    "Françoise Dubé",
    "Björn Ångström",
    "李雷",
    "Ирина Петрова",
];
pub(super) const ATTACHMENTS: &[(&str, &str)] = &[
    ("application/pdf", "report"),
    ("image/jpeg", "photo"),
    ("application/zip", "archive"),
    ("application/vnd.ms-excel", "figures"),
];

pub(super) fn person(rng: &mut Pcg32, non_ascii: bool) -> &'static str {
    let pool = if non_ascii && rng.random_bool(0.6) {
        NON_ASCII_PEOPLE
    } else {
        PEOPLE
    };
    pool[rng.random_range(0..pool.len())]
}

fn word(rng: &mut impl Rng, non_ascii: bool, out: &mut String) {
    if non_ascii && rng.random_bool(0.04) {
        out.push_str(NON_ASCII_WORDS[rng.random_range(0..NON_ASCII_WORDS.len())]);
        return;
    }
    for _ in 0..rng.random_range(1..=4) {
        out.push_str(SYLLABLES[rng.random_range(0..SYLLABLES.len())]);
    }
}

pub(super) fn words_line(rng: &mut Pcg32, count: usize, non_ascii: bool) -> String {
    let mut line = String::new();
    for i in 0..count {
        if i > 0 {
            line.push(' ');
        }
        word(rng, non_ascii, &mut line);
    }
    capitalize(&line)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Word-like prose of `len` bytes (±1 for a split character): sentences, lines of at most 72
/// characters, paragraphs, CRLF line ends, ending with CRLF.
pub(super) fn filler_text(rng: &mut Pcg32, len: usize, non_ascii: bool) -> String {
    let mut text = String::with_capacity(len + 80);
    let mut line = String::with_capacity(96);
    let mut words_left_in_sentence = 0;
    let mut sentences_left_in_paragraph = rng.random_range(2..6);
    while text.len() + line.len() < len {
        let mut w = String::new();
        word(rng, non_ascii, &mut w);
        if words_left_in_sentence == 0 {
            w = capitalize(&w);
            words_left_in_sentence = rng.random_range(5..16);
        }
        words_left_in_sentence -= 1;
        if words_left_in_sentence == 0 {
            w.push('.');
        }
        if !line.is_empty() && line.len() + 1 + w.len() > 72 {
            text.push_str(&line);
            text.push_str("\r\n");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&w);
        if words_left_in_sentence == 0 {
            sentences_left_in_paragraph -= 1;
            if sentences_left_in_paragraph == 0 {
                text.push_str(&line);
                text.push_str("\r\n\r\n");
                line.clear();
                sentences_left_in_paragraph = rng.random_range(2..6);
            }
        }
    }
    text.push_str(&line);
    let mut cut = len.saturating_sub(2).min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    let trimmed = text.trim_end().len();
    text.truncate(trimmed);
    text.push_str("\r\n");
    text
}
