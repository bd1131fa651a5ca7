//! User names, normalised once: they become OPAQUE credential identifiers, so two
//! spellings of one name must give the same bytes.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Longest user name, in characters.
pub const MAX_USER_CHARS: usize = 64;

/// A normalised user name: NFKC, lower case, trimmed; 1 to 64 characters from letters,
/// digits and `. _ - @ +`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserName(String);

/// Why a user name is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a user name is 1 to {MAX_USER_CHARS} letters, digits or . _ - @ +")]
pub struct UserNameError;

impl UserName {
    /// Normalises and checks `raw`.
    pub fn parse(raw: &str) -> Result<Self, UserNameError> {
        let s: String = raw.nfkc().collect::<String>().trim().to_lowercase();
        let n = s.chars().count();
        if n == 0
            || n > MAX_USER_CHARS
            || !s
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'))
        {
            return Err(UserNameError);
        }
        Ok(Self(s))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserName({:?})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_width_and_space() {
        let a = UserName::parse("  Alice@Example.org ").unwrap();
        let b = UserName::parse("ａｌｉｃｅ@example.ORG").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), "alice@example.org");
    }

    #[test]
    fn refuses_empty_long_and_odd() {
        for bad in [
            "",
            "   ",
            "a b",
            "alice/..",
            "x\u{0}",
            &"a".repeat(MAX_USER_CHARS + 1),
        ] {
            assert_eq!(UserName::parse(bad), Err(UserNameError), "{bad:?}");
        }
    }
}
