//! What the command line prints: text for people, or `--json` for scripts. Errors go to
//! standard error as `{"error": {"code", "message"}}` in JSON mode. Nothing here prints a
//! password; the recovery code is printed once, when it is made.

use std::io::Write;

use sealpost_core::CoreError;
use sealpost_core::vault::ProfileInfo;
use sealpost_crypto::RecoveryCode;
use sealpost_crypto::password::{MIN_CRACK_YEARS, Verdict};
use serde_json::json;

pub struct Out {
    json: bool,
}

/// Writes a line to standard output. A closed pipe is not worth a panic.
fn emit(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")?;
    stdout.flush()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn info_json(info: &ProfileInfo, extra: &[(&str, serde_json::Value)]) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    map.insert("user".into(), json!(info.user_name));
    map.insert("dir".into(), json!(info.dir));
    map.insert("profileId".into(), json!(hex(&info.profile_id)));
    map.insert("createdAt".into(), json!(info.created_at));
    for (k, v) in extra {
        map.insert((*k).to_owned(), v.clone());
    }
    serde_json::Value::Object(map)
}

impl Out {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    pub fn verdict(&self, v: &Verdict) {
        let _ = if self.json {
            emit(
                &json!({
                    "accepted": v.accepted,
                    "score": v.score,
                    "guessesLog10": v.guesses_log10,
                    "crackSeconds": v.crack_seconds,
                    "crackTime": v.crack_time,
                    "minCrackYears": MIN_CRACK_YEARS,
                    "warning": v.warning,
                    "suggestions": v.suggestions,
                })
                .to_string(),
            )
        } else {
            let mut text = if v.accepted {
                format!(
                    "accepted: cracking it would take {} of CPU time",
                    v.crack_time
                )
            } else {
                format!(
                    "refused: it could be cracked in {} of CPU time; Sealpost needs at least {MIN_CRACK_YEARS} years",
                    v.crack_time
                )
            };
            if let Some(w) = &v.warning {
                text.push_str(&format!("\nwarning: {w}"));
            }
            for s in &v.suggestions {
                text.push_str(&format!("\nsuggestion: {s}"));
            }
            emit(&text)
        };
    }

    /// The recovery code is shown here and nowhere else; failing to print it is an error.
    pub fn created(&self, info: &ProfileInfo, code: &RecoveryCode) -> anyhow::Result<()> {
        let shown = code.display();
        if self.json {
            let extra = [
                ("status", json!("created")),
                ("recoveryCode", json!(shown.as_str())),
            ];
            emit(&info_json(info, &extra).to_string())?;
        } else {
            emit(&format!(
                "Profile for {} in {}.\n\nRecovery code — shown only now. Write it down and keep it apart from \
                 this device;\nit opens your account if you forget your password:\n\n    {}\n",
                info.user_name,
                info.dir.display(),
                shown.as_str()
            ))?;
        }
        Ok(())
    }

    pub fn ok(&self, what: &str, info: &ProfileInfo) {
        let _ = if self.json {
            emit(&info_json(info, &[("status", json!(what))]).to_string())
        } else {
            emit(&format!(
                "{what}: {} ({})",
                info.user_name,
                info.dir.display()
            ))
        };
    }

    pub fn signed_in(&self, info: &ProfileInfo, failed_attempts: i64) {
        let _ = if self.json {
            emit(
                &info_json(
                    info,
                    &[
                        ("status", json!("signed in")),
                        ("failedAttempts", json!(failed_attempts)),
                    ],
                )
                .to_string(),
            )
        } else {
            let mut text = format!("signed in: {} ({})", info.user_name, info.dir.display());
            if failed_attempts > 0 {
                text.push_str(&format!(
                    "\nwarning: {failed_attempts} failed sign-in attempt(s) on your account since your last sign-in"
                ));
            }
            emit(&text)
        };
    }

    pub fn devices(&self, devices: &[sealpost_proto::DeviceInfo]) {
        let _ = if self.json {
            let list: Vec<_> = devices
                .iter()
                .map(|d| json!({"id": d.id, "name": d.name, "createdAt": d.created_at, "lastSeenAt": d.last_seen_at, "current": d.current}))
                .collect();
            emit(&json!(list).to_string())
        } else {
            let lines: Vec<String> = devices
                .iter()
                .map(|d| {
                    format!(
                        "{}  {}{}",
                        d.id,
                        d.name,
                        if d.current { "  (this device)" } else { "" }
                    )
                })
                .collect();
            emit(&lines.join("\n"))
        };
    }

    pub fn info(&self, info: &ProfileInfo) {
        let _ = if self.json {
            emit(&info_json(info, &[]).to_string())
        } else {
            emit(&format!(
                "user: {}\ndirectory: {}\nprofile id: {}\ncreated: {}",
                info.user_name,
                info.dir.display(),
                hex(&info.profile_id),
                info.created_at
            ))
        };
    }

    pub fn message(&self, text: &str) {
        let _ = if self.json {
            emit(&json!({ "status": text }).to_string())
        } else {
            emit(text)
        };
    }

    /// Whether output is JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A warning on standard error (the command goes on).
    pub fn warning(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = if self.json {
            writeln!(stderr, "{}", json!({ "warning": text }))
        } else {
            writeln!(stderr, "sealpost: warning: {text}")
        };
    }

    /// A JSON value for scripts, or `text` for people.
    pub fn value(&self, value: &serde_json::Value, text: &str) {
        let _ = if self.json {
            emit(&value.to_string())
        } else {
            emit(text)
        };
    }

    /// Bytes written as they are (an armored key), in either mode.
    pub fn raw(&self, bytes: &[u8]) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(bytes)?;
        stdout.flush()?;
        Ok(())
    }

    pub fn names(&self, names: &[String]) {
        let _ = if self.json {
            emit(&json!(names).to_string())
        } else {
            emit(&names.join("\n"))
        };
    }

    /// The one place a secret's value is printed: `sealpost secret get`, on request.
    pub fn secret_value(&self, value: &[u8]) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(value)?;
        stdout.flush()?;
        Ok(())
    }

    pub fn error(&self, err: &anyhow::Error) {
        let code = err
            .downcast_ref::<CoreError>()
            .map_or("error", CoreError::code);
        let mut message = format!("{err:#}");
        if let Some(CoreError::WeakPassword(v)) = err.downcast_ref::<CoreError>() {
            if let Some(w) = &v.warning {
                message.push_str(&format!("; {w}"));
            }
            for s in &v.suggestions {
                message.push_str(&format!("; {s}"));
            }
        }
        let mut stderr = std::io::stderr().lock();
        let _ = if self.json {
            writeln!(
                stderr,
                "{}",
                json!({ "error": { "code": code, "message": message } })
            )
        } else {
            writeln!(stderr, "sealpost: {message}")
        };
    }
}
