//! What the command line prints: text for people, or `--json` for scripts. Errors go to
//! standard error as `{"error": {"code", "message"}}` in JSON mode. Nothing here prints a
//! password; the recovery code is printed once, when it is made.

use std::io::Write;

use sealpost_core::CoreError;
use sealpost_core::api::{Created, DeviceView, PasswordCheck, ProfileFacts, SessionInfo};
use sealpost_crypto::password::MIN_CRACK_YEARS;
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

/// The profile's facts as JSON, with `extra` fields.
fn facts_json(facts: &ProfileFacts, extra: &[(&str, serde_json::Value)]) -> serde_json::Value {
    let mut v = json!(facts);
    if let Some(map) = v.as_object_mut() {
        for (k, x) in extra {
            map.insert((*k).to_owned(), x.clone());
        }
    }
    v
}

impl Out {
    pub fn new(json: bool) -> Self {
        Self { json }
    }

    pub fn verdict(&self, v: &PasswordCheck) {
        let _ = if self.json {
            let mut j = json!(v);
            if let Some(map) = j.as_object_mut() {
                map.insert("minCrackYears".into(), json!(MIN_CRACK_YEARS));
            }
            emit(&j.to_string())
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
    pub fn created(&self, created: &Created, facts: &ProfileFacts) -> anyhow::Result<()> {
        self.new_code(&created.recovery_code, facts)
    }

    /// A recovery code just made, shown once.
    pub fn new_code(&self, code: &str, facts: &ProfileFacts) -> anyhow::Result<()> {
        if self.json {
            let extra = [("status", json!("created")), ("recoveryCode", json!(code))];
            emit(&facts_json(facts, &extra).to_string())?;
        } else {
            emit(&format!(
                "Profile for {} in {}.\n\nRecovery code — shown only now. Write it down and keep it apart from \
                 this device;\nit opens your account if you forget your password:\n\n    {code}\n",
                facts.user, facts.dir,
            ))?;
        }
        Ok(())
    }

    /// The profile's facts after `what` happened (nothing happened when it is empty).
    pub fn facts(&self, what: &str, facts: &ProfileFacts) {
        let _ = if self.json {
            let extra: &[(&str, serde_json::Value)] = if what.is_empty() {
                &[]
            } else {
                &[("status", json!(what))]
            };
            emit(&facts_json(facts, extra).to_string())
        } else if what.is_empty() {
            emit(&format!(
                "user: {}\ndirectory: {}\ncreated: {}",
                facts.user, facts.dir, facts.created_at
            ))
        } else {
            emit(&format!("{what}: {} ({})", facts.user, facts.dir))
        };
    }

    pub fn signed_in(&self, info: &SessionInfo, facts: &ProfileFacts) {
        let _ = if self.json {
            let extra = [
                ("status", json!("signed in")),
                ("failedAttempts", json!(info.failed_attempts)),
            ];
            emit(&facts_json(facts, &extra).to_string())
        } else {
            let mut text = format!("signed in: {} ({})", facts.user, facts.dir);
            if info.failed_attempts > 0 {
                text.push_str(&format!(
                    "\nwarning: {} failed sign-in attempt(s) on your account since your last sign-in",
                    info.failed_attempts
                ));
            }
            emit(&text)
        };
    }

    pub fn devices(&self, devices: &[DeviceView]) {
        let _ = if self.json {
            emit(&json!(devices).to_string())
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
