//! SOP's edges: exit codes, indirect inputs and outputs (`FILE`, `@ENV:NAME`, `@FD:N`),
//! passwords, and ISO-8601 dates.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealpost_pgp::sop_support::SopError;
use sealpost_pgp::{Passphrase, WipedBytes};

/// The exit codes of the SOP specification (draft-dkg-openpgp-stateless-cli-14).
pub mod code {
    /// Any failure the spec does not name.
    pub const FAILURE: u8 = 1;
    /// No acceptable signatures found.
    pub const NO_SIGNATURE: u8 = 3;
    /// A certificate is not encryption-capable.
    pub const CERT_CANNOT_ENCRYPT: u8 = 17;
    /// A required argument is missing.
    pub const MISSING_ARG: u8 = 19;
    /// Incomplete verification instructions.
    pub const INCOMPLETE_VERIFICATION: u8 = 23;
    /// Unable to decrypt.
    pub const CANNOT_DECRYPT: u8 = 29;
    /// A password is not UTF-8 (or otherwise unreliable).
    pub const PASSWORD_NOT_HUMAN_READABLE: u8 = 31;
    /// An option is not supported.
    pub const UNSUPPORTED_OPTION: u8 = 37;
    /// Invalid data type.
    pub const BAD_DATA: u8 = 41;
    /// Non-text input where text was expected.
    pub const EXPECTED_TEXT: u8 = 53;
    /// An output file already exists.
    pub const OUTPUT_EXISTS: u8 = 59;
    /// An input file does not exist.
    pub const MISSING_INPUT: u8 = 61;
    /// A key is locked and no given password unlocks it.
    pub const KEY_IS_PROTECTED: u8 = 67;
    /// The subcommand is not supported.
    pub const UNSUPPORTED_SUBCOMMAND: u8 = 69;
    /// An indirect parameter has an unknown `@` prefix.
    pub const UNSUPPORTED_SPECIAL_PREFIX: u8 = 71;
    /// An `@` designator names a file that exists.
    pub const AMBIGUOUS_INPUT: u8 = 73;
    /// A key cannot sign.
    pub const KEY_CANNOT_SIGN: u8 = 79;
    /// Options that cannot be used together.
    pub const INCOMPATIBLE_OPTIONS: u8 = 83;
    /// The profile is not supported.
    pub const UNSUPPORTED_PROFILE: u8 = 89;
}

/// A failed SOP command: the exit code and a message for standard error.
#[derive(Debug)]
pub struct Failure {
    /// One of [`code`].
    pub code: u8,
    /// What went wrong.
    pub message: String,
}

impl Failure {
    /// A failure with `code`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<SopError> for Failure {
    fn from(e: SopError) -> Self {
        let code = match &e {
            SopError::BadData(_) | SopError::BadSessionKey => code::BAD_DATA,
            SopError::NoSignature => code::NO_SIGNATURE,
            SopError::CertCannotEncrypt(_) => code::CERT_CANNOT_ENCRYPT,
            SopError::KeyCannotSign(_) => code::KEY_CANNOT_SIGN,
            SopError::KeyIsProtected(_) => code::KEY_IS_PROTECTED,
            SopError::CannotDecrypt(_) => code::CANNOT_DECRYPT,
            SopError::ExpectedText => code::EXPECTED_TEXT,
            SopError::TooLarge(_) => code::BAD_DATA,
            _ => code::FAILURE,
        };
        Self::new(code, e.to_string())
    }
}

/// Where an indirect parameter points.
enum Source {
    File(PathBuf),
    Env(String),
}

/// Resolves `@ENV:NAME`, `@FD:N` or a file name.
fn source(name: &str) -> Result<Source, Failure> {
    let Some(special) = name.strip_prefix('@') else {
        return Ok(Source::File(PathBuf::from(name)));
    };
    if Path::new(name).exists() {
        return Err(Failure::new(
            code::AMBIGUOUS_INPUT,
            format!("{name:?} is a special designator, but a file of that name exists"),
        ));
    }
    if let Some(var) = special.strip_prefix("ENV:") {
        return Ok(Source::Env(var.to_owned()));
    }
    if let Some(fd) = special.strip_prefix("FD:")
        && fd.parse::<u32>().is_ok()
    {
        return Ok(Source::File(PathBuf::from(format!("/dev/fd/{fd}"))));
    }
    Err(Failure::new(
        code::UNSUPPORTED_SPECIAL_PREFIX,
        format!("unsupported special designator {name:?}"),
    ))
}

/// Reads an indirect input (a file, `@ENV:NAME` or `@FD:N`), wiped when dropped.
pub fn read_input(name: &str) -> Result<WipedBytes, Failure> {
    match source(name)? {
        Source::Env(var) => std::env::var_os(&var)
            .map(|v| WipedBytes::from(v.into_encoded_bytes()))
            .ok_or_else(|| {
                Failure::new(
                    code::MISSING_INPUT,
                    format!("environment variable {var} is not set"),
                )
            }),
        Source::File(path) => {
            let mut file = std::fs::File::open(&path).map_err(|e| {
                Failure::new(code::MISSING_INPUT, format!("cannot read {name:?}: {e}"))
            })?;
            let size = file.metadata().map_or(0, |m| m.len());
            let mut data =
                WipedBytes::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
            file.read_to_end(&mut data).map_err(|e| {
                Failure::new(code::MISSING_INPUT, format!("cannot read {name:?}: {e}"))
            })?;
            Ok(data)
        }
    }
}

/// Reads all of standard input, into one buffer sized up front when stdin is a file: a
/// growing buffer would copy 10 MiB of ciphertext several times, and leave the old
/// copies unwiped in freed memory.
pub fn read_stdin() -> Result<WipedBytes, Failure> {
    let mut data = WipedBytes::with_capacity(stdin_size().saturating_add(1));
    std::io::stdin()
        .lock()
        .read_to_end(&mut data)
        .map_err(|e| Failure::new(code::FAILURE, format!("cannot read standard input: {e}")))?;
    Ok(data)
}

/// The size of standard input when it is a regular file, else 0.
#[cfg(unix)]
fn stdin_size() -> usize {
    use std::os::fd::AsFd;
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .ok()
        .filter(std::fs::Metadata::is_file)
        .and_then(|m| usize::try_from(m.len()).ok())
        .unwrap_or(0)
}

#[cfg(not(unix))]
fn stdin_size() -> usize {
    0
}

/// Writes all of `data` to standard output.
pub fn write_stdout(data: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(data)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::new(code::FAILURE, format!("cannot write standard output: {e}")))
}

/// An indirect output, checked before any work is done: a file that must not exist
/// yet, or `@FD:N`.
#[derive(Debug)]
pub struct Output {
    path: PathBuf,
    fd: bool,
}

impl Output {
    /// Checks `name`: an existing file is [`code::OUTPUT_EXISTS`]; `@ENV:` cannot be
    /// written.
    pub fn prepare(name: &str) -> Result<Self, Failure> {
        match source(name)? {
            Source::Env(_) => Err(Failure::new(
                code::UNSUPPORTED_SPECIAL_PREFIX,
                format!("{name:?} cannot be an output"),
            )),
            Source::File(path) if name.starts_with('@') => Ok(Self { path, fd: true }),
            Source::File(path) => {
                if path.exists() {
                    return Err(Failure::new(
                        code::OUTPUT_EXISTS,
                        format!("{name:?} already exists"),
                    ));
                }
                Ok(Self { path, fd: false })
            }
        }
    }

    /// Writes `data`, never over an existing file.
    pub fn write(&self, data: &[u8]) -> Result<(), Failure> {
        let mut options = OpenOptions::new();
        if self.fd {
            options.write(true);
        } else {
            options.write(true).create_new(true);
        }
        let shown = self.path.display();
        let mut file = options.open(&self.path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Failure::new(code::OUTPUT_EXISTS, format!("{shown} already exists"))
            } else {
                Failure::new(code::FAILURE, format!("cannot write {shown}: {e}"))
            }
        })?;
        file.write_all(data)
            .and_then(|()| file.flush())
            .map_err(|e| Failure::new(code::FAILURE, format!("cannot write {shown}: {e}")))
    }
}

/// Reads a password to *make* something with (encrypt, generate-key): it must be UTF-8;
/// trailing whitespace is removed (decryption tries both forms).
pub fn new_password(name: &str) -> Result<Passphrase, Failure> {
    let mut password = password(name)?;
    let trimmed = password.expose().trim_end();
    if trimmed.len() != password.expose().len() {
        password = Passphrase::new(trimmed.to_owned());
    }
    Ok(password)
}

/// Reads a password to *open* something with, as given.
pub fn password(name: &str) -> Result<Passphrase, Failure> {
    let bytes = read_input(name)?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Failure::new(
            code::PASSWORD_NOT_HUMAN_READABLE,
            format!("the password in {name:?} is not UTF-8"),
        )
    })?;
    Ok(Passphrase::new(text.to_owned()))
}

// ---------------------------------------------------------------- dates

/// Parses a SOP `DATE`: `-` (no limit: `None`), `now`, or ISO-8601 in UTC or with an
/// offset: `2019-10-29`, `2019-10-29T18:36:45Z`, `20191029T183645Z`, `...+01:00`.
pub fn parse_date(text: &str, now: SystemTime) -> Result<Option<SystemTime>, Failure> {
    let bad = || Failure::new(code::UNSUPPORTED_OPTION, format!("not a date: {text:?}"));
    match text {
        "-" => return Ok(None),
        "now" => return Ok(Some(now)),
        _ => {}
    }
    let digits = |s: &str| -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (date, rest) = match text.split_once(['T', 't', ' ']) {
        Some((d, r)) => (d, r),
        None => (text, ""),
    };
    let date: String = date.chars().filter(|c| *c != '-').collect();
    if date.len() != 8 {
        return Err(bad());
    }
    let year = digits(date.get(0..4).ok_or_else(bad)?).ok_or_else(bad)?;
    let month = digits(date.get(4..6).ok_or_else(bad)?).ok_or_else(bad)?;
    let day = digits(date.get(6..8).ok_or_else(bad)?).ok_or_else(bad)?;
    // The time and the offset: `HH[:MM[:SS]][.fff](Z|±HH[:MM])`.
    let (clock, offset) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (c, o) = rest.split_at(i);
        let sign = if o.starts_with('-') { -1 } else { 1 };
        let o: String = o.chars().skip(1).filter(|c| *c != ':').collect();
        let hours = digits(o.get(0..2).ok_or_else(bad)?).ok_or_else(bad)?;
        let minutes = o.get(2..4).and_then(digits).unwrap_or(0);
        (c, sign * (hours * 3600 + minutes * 60))
    } else {
        (rest, 0)
    };
    let clock = clock.split('.').next().unwrap_or_default();
    let clock: String = clock.chars().filter(|c| *c != ':').collect();
    let part = |range: std::ops::Range<usize>| -> Result<i64, Failure> {
        match clock.get(range) {
            None | Some("") => Ok(0),
            Some(s) => digits(s).ok_or_else(bad),
        }
    };
    if clock.len() > 6 || !clock.len().is_multiple_of(2) {
        return Err(bad());
    }
    let (h, m, s) = (part(0..2)?, part(2..4)?, part(4..6)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return Err(bad());
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + s - offset;
    let seconds = u64::try_from(seconds).map_err(|_| bad())?;
    Ok(Some(UNIX_EPOCH + Duration::from_secs(seconds)))
}

/// `2019-10-29T18:36:45Z`.
pub fn format_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}
