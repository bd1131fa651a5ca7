//! Bounds on what an IMAP server may send, enforced before any parser sees the bytes.
//!
//! async-imap buffers a whole response before parsing it (up to 512 MiB), and its parser
//! recurses into parenthesised lists. A hostile or broken server could therefore make
//! the client allocate without end (a `{99999999999}` literal, an endless stream of
//! untagged lines) or overflow the stack (a `BODYSTRUCTURE` nested ten thousand levels
//! deep). [`Bounded`] sits between the TLS stream and async-imap and follows the IMAP
//! framing of the bytes it passes on: lines, quoted strings, literals (`{n}` CRLF and
//! then `n` raw bytes) and parentheses. When a [`Limits`] bound is crossed, the read
//! fails with [`LimitExceeded`] inside an `io::Error`, and so does every later read, so
//! the session ends with an error instead of growing.
//!
//! The scanner is a small state machine over single bytes (literal contents are skipped
//! in bulk) and keeps only counters, so its own memory is constant.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much an IMAP server may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes in one line outside literals (a long `SEARCH` result is one line).
    pub max_line: usize,
    /// Bytes in one literal (one message body, typically).
    pub max_literal: u64,
    /// Bytes (literals included) between two tagged responses: one command's whole
    /// answer, or the untagged data of an IDLE.
    pub max_response: u64,
    /// Nesting depth of parenthesised lists.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_line: 4 * 1024 * 1024,
            max_literal: 64 * 1024 * 1024,
            max_response: 256 * 1024 * 1024,
            max_depth: 48,
        }
    }
}

/// Which bound a server crossed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// A line (outside literals) was too long.
    #[error("the server sent a line longer than {limit} bytes")]
    Line {
        /// The bound.
        limit: usize,
    },
    /// A literal was announced that is larger than allowed.
    #[error("the server announced a literal of {size} bytes, more than the limit of {limit}")]
    Literal {
        /// The announced size (saturated at `u64::MAX`).
        size: u64,
        /// The bound.
        limit: u64,
    },
    /// Too many bytes arrived without a tagged response.
    #[error("the server sent more than {limit} bytes without completing a response")]
    Response {
        /// The bound.
        limit: u64,
    },
    /// Parentheses were nested too deeply.
    #[error("the server nested lists deeper than {limit} levels")]
    Depth {
        /// The bound.
        limit: usize,
    },
}

impl LimitExceeded {
    /// The `LimitExceeded` inside an `io::Error` made by [`Bounded`], if it is one.
    pub fn from_io(e: &io::Error) -> Option<&Self> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<Self>())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the first byte of a line.
    LineStart,
    /// Inside a line, outside quotes and literals.
    Line,
    /// Inside a quoted string.
    Quoted,
    /// After a backslash inside a quoted string.
    QuotedEscape,
    /// After `{`: reading the literal's size.
    LiteralSize { size: u64, digits: u8 },
    /// After `}`: expecting CR or LF.
    LiteralClose { size: u64 },
    /// After `}` CR: expecting LF.
    LiteralLf { size: u64 },
    /// Inside a literal's raw bytes.
    Literal { remaining: u64 },
}

/// Follows the framing of server-to-client IMAP bytes and checks [`Limits`].
#[derive(Debug, Clone)]
pub struct Scanner {
    limits: Limits,
    state: State,
    line_len: usize,
    depth: usize,
    response: u64,
    tagged: bool,
}

impl Scanner {
    /// A scanner at the start of a connection.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            state: State::LineStart,
            line_len: 0,
            depth: 0,
            response: 0,
            tagged: false,
        }
    }

    /// Feeds bytes the server sent; fails at the first byte that crosses a bound.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), LimitExceeded> {
        while !bytes.is_empty() {
            if let State::Literal { remaining } = self.state {
                let take = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                self.count(take as u64)?;
                let left = remaining - take as u64;
                self.state = if left == 0 {
                    self.line_len = 0;
                    State::Line
                } else {
                    State::Literal { remaining: left }
                };
                bytes = bytes.get(take..).unwrap_or_default();
                continue;
            }
            let Some((&b, rest)) = bytes.split_first() else {
                break;
            };
            bytes = rest;
            self.byte(b)?;
        }
        Ok(())
    }

    fn count(&mut self, n: u64) -> Result<(), LimitExceeded> {
        self.response = self.response.saturating_add(n);
        if self.response > self.limits.max_response {
            return Err(LimitExceeded::Response {
                limit: self.limits.max_response,
            });
        }
        Ok(())
    }

    fn byte(&mut self, b: u8) -> Result<(), LimitExceeded> {
        self.count(1)?;
        self.line_len += 1;
        if self.line_len > self.limits.max_line {
            return Err(LimitExceeded::Line {
                limit: self.limits.max_line,
            });
        }
        if b == b'\n' {
            match self.state {
                State::LiteralClose { size } | State::LiteralLf { size } => {
                    self.start_literal(size)
                }
                _ => self.end_line(),
            }
            return Ok(());
        }
        self.state = match self.state {
            State::LineStart => {
                self.tagged = b != b'*' && b != b'+';
                self.in_line(b)?
            }
            State::Line => self.in_line(b)?,
            State::Quoted => match b {
                b'\\' => State::QuotedEscape,
                b'"' => State::Line,
                _ => State::Quoted,
            },
            State::QuotedEscape => State::Quoted,
            State::LiteralSize { size, digits } => match b {
                b'0'..=b'9' => {
                    let size = size.saturating_mul(10).saturating_add(u64::from(b - b'0'));
                    if size > self.limits.max_literal {
                        return Err(LimitExceeded::Literal {
                            size,
                            limit: self.limits.max_literal,
                        });
                    }
                    State::LiteralSize {
                        size,
                        digits: digits.saturating_add(1),
                    }
                }
                b'+' => State::LiteralSize { size, digits },
                b'}' if digits > 0 => State::LiteralClose { size },
                _ => self.in_line(b)?,
            },
            State::LiteralClose { size } if b == b'\r' => State::LiteralLf { size },
            State::LiteralClose { .. } | State::LiteralLf { .. } => self.in_line(b)?,
            // Handled in `feed`.
            State::Literal { remaining } => State::Literal { remaining },
        };
        Ok(())
    }

    /// The state after byte `b` inside a line (outside quotes and literals).
    fn in_line(&mut self, b: u8) -> Result<State, LimitExceeded> {
        Ok(match b {
            b'"' => State::Quoted,
            b'{' => State::LiteralSize { size: 0, digits: 0 },
            b'(' | b'[' => {
                self.depth += 1;
                if self.depth > self.limits.max_depth {
                    return Err(LimitExceeded::Depth {
                        limit: self.limits.max_depth,
                    });
                }
                State::Line
            }
            b')' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                State::Line
            }
            _ => State::Line,
        })
    }

    fn start_literal(&mut self, size: u64) {
        self.line_len = 0;
        self.state = if size == 0 {
            State::Line
        } else {
            State::Literal { remaining: size }
        };
    }

    fn end_line(&mut self) {
        if self.tagged {
            self.response = 0;
        }
        self.depth = 0;
        self.line_len = 0;
        self.state = State::LineStart;
    }
}

/// A stream whose reads fail once the server crosses a [`Limits`] bound. Writes pass
/// through unchanged.
#[derive(Debug)]
pub struct Bounded<S> {
    inner: S,
    scanner: Scanner,
    failed: Option<LimitExceeded>,
}

impl<S> Bounded<S> {
    /// Wraps `inner`, which is at the start of the server's byte stream.
    pub fn new(inner: S, limits: Limits) -> Self {
        Self {
            inner,
            scanner: Scanner::new(limits),
            failed: None,
        }
    }

    /// The wrapped stream.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

fn limit_error(e: LimitExceeded) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<S: AsyncRead + Unpin> AsyncRead for Bounded<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = &this.failed {
            return Poll::Ready(Err(limit_error(e.clone())));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        let new = buf.filled().get(before..).unwrap_or_default();
        if let Err(e) = this.scanner.feed(new) {
            tracing::warn!("dropping the IMAP connection: {e}");
            this.failed = Some(e.clone());
            return Poll::Ready(Err(limit_error(e)));
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Bounded<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Limits {
        Limits {
            max_line: 100,
            max_literal: 1000,
            max_response: 5000,
            max_depth: 5,
        }
    }

    #[test]
    fn ordinary_responses_pass_in_any_split() {
        let wire = b"* OK [CAPABILITY IMAP4rev1] ready\r\n\
            * 1 FETCH (UID 7 FLAGS (\\Seen) BODY[] {12}\r\n(((((((((((( )\r\n\
            * LIST (\\HasNoChildren) \"/\" \"a \\\" ( b\"\r\n\
            a1 OK done\r\n";
        for split in 1..wire.len() {
            let mut s = Scanner::new(small());
            let (a, b) = wire.split_at(split);
            s.feed(a).unwrap();
            s.feed(b).unwrap();
            assert_eq!(s.state, State::LineStart);
            assert_eq!(s.response, 0);
        }
    }

    #[test]
    fn a_huge_literal_is_refused_when_announced() {
        let mut s = Scanner::new(small());
        let e = s.feed(b"* 1 FETCH (BODY[] {99000000000}\r\n").unwrap_err();
        assert!(
            matches!(e, LimitExceeded::Literal { limit: 1000, .. }),
            "{e:?}"
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut s = Scanner::new(small());
        assert_eq!(
            s.feed(b"* 1 FETCH (BODYSTRUCTURE ((((((").unwrap_err(),
            LimitExceeded::Depth { limit: 5 }
        );
    }

    #[test]
    fn parentheses_inside_quotes_and_literals_do_not_count() {
        let mut s = Scanner::new(small());
        s.feed(b"* 1 FETCH (X \"((((((((\" {8}\r\n((((((((")
            .unwrap();
        s.feed(b")\r\n").unwrap();
    }

    #[test]
    fn long_lines_and_endless_untagged_data_are_refused() {
        let mut s = Scanner::new(small());
        assert_eq!(
            s.feed(&[b'x'; 101]).unwrap_err(),
            LimitExceeded::Line { limit: 100 }
        );
        let mut s = Scanner::new(small());
        let mut result = Ok(());
        for _ in 0..1000 {
            result = s.feed(b"* OK still here\r\n");
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.unwrap_err(), LimitExceeded::Response { limit: 5000 });
    }

    #[test]
    fn a_tagged_response_resets_the_budget() {
        let mut s = Scanner::new(small());
        for _ in 0..1000 {
            s.feed(b"* OK still here\r\na OK x\r\n").unwrap();
        }
    }
}
