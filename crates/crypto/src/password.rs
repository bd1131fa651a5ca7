//! Passwords, and the gate that decides whether one is strong enough to be the only trust
//! anchor.
//!
//! A [`Password`] is normalised to Unicode NFKC once, when it is made, so the same
//! password typed on two keyboards derives the same key. It is never truncated: the KDF
//! always sees all of it. It may be up to [`MAX_PASSWORD_CHARS`] characters.
//!
//! The [`gate`] estimates how many guesses an attacker needs (zxcvbn, with the user's
//! name and address as known words), multiplies by the CPU time one guess costs at our
//! shipped Argon2id settings ([`CPU_SECONDS_PER_GUESS`], measured), and refuses anything
//! under [`MIN_CRACK_YEARS`] years of CPU time. zxcvbn sees only the first
//! [`ZXCVBN_PREFIX_CHARS`] characters (it is slow on long input); a longer password is
//! then judged by a lower bound of its strength, never an upper one.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use zeroize::Zeroizing;

use crate::CryptoError;

/// The longest password we accept, in characters (after normalisation).
pub const MAX_PASSWORD_CHARS: usize = 4096;

/// How many leading characters zxcvbn looks at.
pub const ZXCVBN_PREFIX_CHARS: usize = 100;

/// The gate: a password must cost at least this many years of CPU time to crack.
pub const MIN_CRACK_YEARS: f64 = 100.0;

/// CPU-seconds one Argon2id evaluation costs at [`crate::kdf::Argon2Params::SHIPPED`]
/// (256 MiB, t=3, p=4) on the reference machine (2-core x86_64, Debian 12, 2026-11-23),
/// rounded down from the best of 10 runs (0.566 s; median 0.607 s), measured with:
///
/// ```text
/// cargo bench -p sealpost-crypto --bench kdf
/// ```
pub const CPU_SECONDS_PER_GUESS: f64 = 0.55;

/// Seconds in a Julian year.
pub const SECONDS_PER_YEAR: f64 = 365.25 * 24.0 * 3600.0;

/// A password, normalised to NFKC, wiped from memory when dropped.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl Password {
    /// Normalises `input` (NFKC). Fails only when the result is over
    /// [`MAX_PASSWORD_CHARS`] characters. The caller wipes its own copy of `input`.
    pub fn new(input: &str) -> Result<Self, CryptoError> {
        let normalized: Zeroizing<String> = Zeroizing::new(input.nfkc().collect());
        if normalized.chars().count() > MAX_PASSWORD_CHARS {
            return Err(CryptoError::PasswordTooLong {
                max: MAX_PASSWORD_CHARS,
            });
        }
        Ok(Self(normalized))
    }

    /// The normalised password.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the password is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// The gate's answer, with everything a UI shows beside a strength meter.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Whether the password may be used.
    pub accepted: bool,
    /// zxcvbn's score, 0 (weakest) to 4.
    pub score: u8,
    /// log10 of zxcvbn's guess estimate.
    pub guesses_log10: f64,
    /// Estimated CPU-seconds to crack: guesses × [`CPU_SECONDS_PER_GUESS`].
    pub crack_seconds: f64,
    /// The same estimate in words ("3 days", "12 thousand years").
    pub crack_time: String,
    /// What is wrong, when zxcvbn recognised a pattern.
    pub warning: Option<String>,
    /// How to do better; empty when the password is accepted.
    pub suggestions: Vec<String>,
}

/// Judges a password. `user_inputs` are words an attacker would try first: the user name,
/// the e-mail address, the server's name.
pub fn gate(password: &Password, user_inputs: &[&str]) -> Verdict {
    if password.is_empty() {
        return Verdict {
            accepted: false,
            score: 0,
            guesses_log10: 0.0,
            crack_seconds: 0.0,
            crack_time: crack_time_in_words(0.0),
            warning: Some("Enter a password.".to_owned()),
            suggestions: vec![SUGGEST_MORE_WORDS.to_owned()],
        };
    }
    let prefix: Zeroizing<String> = Zeroizing::new(
        password
            .expose()
            .chars()
            .take(ZXCVBN_PREFIX_CHARS)
            .collect(),
    );
    let mut inputs: Vec<&str> = Vec::with_capacity(user_inputs.len() * 2 + 1);
    for input in user_inputs.iter().filter(|s| !s.is_empty()) {
        inputs.push(input);
        // An address's local part and domain labels are guessed separately too.
        if let Some((local, domain)) = input.split_once('@') {
            inputs.push(local);
            inputs.extend(domain.split('.'));
        }
    }
    inputs.extend_from_slice(FAMOUS_EXAMPLES);
    let estimate = zxcvbn::zxcvbn(&prefix, &inputs);
    let guesses_log10 = estimate.guesses_log10().max(0.0);
    let crack_seconds = crack_seconds(guesses_log10);
    let accepted = crack_seconds >= MIN_CRACK_YEARS * SECONDS_PER_YEAR;

    let feedback = estimate.feedback();
    let warning = feedback.and_then(|f| f.warning()).map(|w| w.to_string());
    let mut suggestions: Vec<String> = if accepted {
        Vec::new()
    } else {
        feedback
            .map(|f| f.suggestions().iter().map(|s| s.to_string()).collect())
            .unwrap_or_default()
    };
    if !accepted && suggestions.is_empty() {
        suggestions.push(SUGGEST_MORE_WORDS.to_owned());
    }
    Verdict {
        accepted,
        score: u8::from(estimate.score()),
        guesses_log10,
        crack_seconds,
        crack_time: crack_time_in_words(crack_seconds),
        warning,
        suggestions,
    }
}

/// Words an attacker tries first whoever the user is: our own name, and passphrases made
/// famous as examples of strong ones (zxcvbn's dictionaries do not know them).
const FAMOUS_EXAMPLES: &[&str] = &[
    "sealpost",
    "correct horse battery staple",
    "correcthorsebatterystaple",
    "correct-horse-battery-staple",
    "tr0ub4dor&3",
    "troubador",
];

/// What we suggest when zxcvbn has nothing to say but the password is still too weak.
const SUGGEST_MORE_WORDS: &str =
    "Add another word or two. Uncommon words are better; five random words are plenty.";

/// The arithmetic of the gate: guesses × CPU-seconds per guess.
pub fn crack_seconds(guesses_log10: f64) -> f64 {
    10f64.powf(guesses_log10) * CPU_SECONDS_PER_GUESS
}

/// A duration in seconds, in the words a person reads beside a strength meter.
pub fn crack_time_in_words(seconds: f64) -> String {
    const MINUTE: f64 = 60.0;
    const HOUR: f64 = 60.0 * MINUTE;
    const DAY: f64 = 24.0 * HOUR;
    const MONTH: f64 = SECONDS_PER_YEAR / 12.0;
    fn unit(n: f64, word: &str) -> String {
        let n = n.floor();
        if n == 1.0 {
            format!("1 {word}")
        } else {
            format!("{n:.0} {word}s")
        }
    }
    if !seconds.is_finite() || seconds >= 1e12 * SECONDS_PER_YEAR {
        return "more than a trillion years".to_owned();
    }
    let years = seconds / SECONDS_PER_YEAR;
    match seconds {
        s if s < 1.0 => "less than a second".to_owned(),
        s if s < MINUTE => unit(s, "second"),
        s if s < HOUR => unit(s / MINUTE, "minute"),
        s if s < DAY => unit(s / HOUR, "hour"),
        s if s < MONTH => unit(s / DAY, "day"),
        s if s < SECONDS_PER_YEAR => unit(s / MONTH, "month"),
        _ if years < 1e3 => unit(years, "year"),
        _ if years < 1e6 => format!("{:.0} thousand years", (years / 1e3).floor()),
        _ if years < 1e9 => format!("{:.0} million years", (years / 1e6).floor()),
        _ => format!("{:.0} billion years", (years / 1e9).floor()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(pw: &str) -> Verdict {
        gate(&Password::new(pw).unwrap(), &["alice", "alice@example.org"])
    }

    #[test]
    fn weak_passwords_are_refused_with_feedback() {
        for pw in [
            "",
            "password",
            "P@ssw0rd!",
            "qwertyuiop",
            "zxcvbnm,./",
            "1qaz2wsx3edc",
            "14/07/1989",
            "1989-07-14",
            "michael1987",
            "Jennifer2024!",
            "alice2024",
            "alice@example.org",
            "correcthorse",
            "correct horse battery staple",
            "CorrectHorseBatteryStaple",
            "Tr0ub4dor&3",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "abcdefghijklmnop",
        ] {
            let v = verdict(pw);
            assert!(!v.accepted, "{pw:?} was accepted: {v:?}");
            assert!(!v.suggestions.is_empty(), "{pw:?} got no suggestion: {v:?}");
            assert!(!v.crack_time.is_empty());
        }
        // Patterns come with zxcvbn's own warning.
        assert!(verdict("qwertyuiop").warning.is_some());
        assert!(verdict("password").warning.is_some());
        assert!(verdict("14/07/1989").warning.is_some());
    }

    #[test]
    fn strong_passwords_are_accepted() {
        for pw in [
            // five random dictionary words (diceware)
            "tundra mosaic gravel whimsy plank",
            "orbit velvet cashew lantern quarry",
            // 14 random characters
            "k7#Qv9!zR2m@Lp",
            "Xw4$hT8e&Nb3Yq",
        ] {
            let v = verdict(pw);
            assert!(v.accepted, "{pw:?} was refused: {v:?}");
            assert!(v.suggestions.is_empty());
        }
    }

    #[test]
    fn crack_time_arithmetic_is_guesses_times_cost() {
        for pw in [
            "password",
            "michael1987",
            "tundra mosaic gravel whimsy plank",
        ] {
            let v = verdict(pw);
            let mut inputs = vec!["alice", "alice@example.org", "alice", "example", "org"];
            inputs.extend_from_slice(FAMOUS_EXAMPLES);
            let e = zxcvbn::zxcvbn(pw, &inputs);
            let expected = 10f64.powf(e.guesses_log10()) * CPU_SECONDS_PER_GUESS;
            assert!(
                (v.crack_seconds - expected).abs() <= expected * 1e-9,
                "{pw}"
            );
            let threshold = MIN_CRACK_YEARS * 365.25 * 86_400.0;
            assert_eq!(v.accepted, expected >= threshold, "{pw}");
        }
        // The gate's line in guesses: 100 years / cost per guess.
        let min_guesses = MIN_CRACK_YEARS * SECONDS_PER_YEAR / CPU_SECONDS_PER_GUESS;
        assert!(crack_seconds(min_guesses.log10() + 0.01) >= MIN_CRACK_YEARS * SECONDS_PER_YEAR);
        assert!(crack_seconds(min_guesses.log10() - 0.01) < MIN_CRACK_YEARS * SECONDS_PER_YEAR);
    }

    #[test]
    fn user_name_and_address_count_against_the_password() {
        let pw = Password::new("quentinvandersloot").unwrap();
        let without = gate(&pw, &[]);
        let with = gate(&pw, &["quentinvandersloot@example.org"]);
        assert!(with.guesses_log10 < without.guesses_log10);
    }

    #[test]
    fn long_passwords_are_allowed_and_judged_by_their_prefix() {
        let long = "tundra mosaic gravel whimsy plank ".repeat(30); // 1,020 chars
        let pw = Password::new(&long).unwrap();
        assert!(pw.expose().chars().count() >= 1000);
        assert!(gate(&pw, &[]).accepted);
        let too_long = "x".repeat(MAX_PASSWORD_CHARS + 1);
        assert_eq!(
            Password::new(&too_long).unwrap_err(),
            CryptoError::PasswordTooLong {
                max: MAX_PASSWORD_CHARS
            }
        );
    }

    #[test]
    fn normalisation_is_nfkc() {
        // "é" precomposed vs e + combining acute; full-width letters vs ASCII.
        let a = Password::new("caf\u{e9} ＡＢＣ").unwrap();
        let b = Password::new("cafe\u{301} ABC").unwrap();
        assert_eq!(a.expose(), b.expose());
    }

    #[test]
    fn words_for_durations() {
        assert_eq!(crack_time_in_words(0.2), "less than a second");
        assert_eq!(crack_time_in_words(1.0), "1 second");
        assert_eq!(crack_time_in_words(3.0 * 3600.0), "3 hours");
        assert_eq!(crack_time_in_words(40.0 * SECONDS_PER_YEAR), "40 years");
        assert_eq!(
            crack_time_in_words(12_500.0 * SECONDS_PER_YEAR),
            "12 thousand years"
        );
        assert_eq!(
            crack_time_in_words(f64::INFINITY),
            "more than a trillion years"
        );
    }

    #[test]
    fn debug_is_redacted() {
        let pw = Password::new("hunter2hunter2").unwrap();
        assert!(!format!("{pw:?}").contains("hunter2"));
    }
}
