//! Delegation to the IPAM plugin (SPEC.md section 4): found in `CNI_PATH`,
//! run with this invocation's environment and configuration, its stderr
//! passed through, its error result passed back with its own code.
//!
//! Design decisions:
//! - Version negotiation: the delegate gets the configuration unchanged when
//!   it speaks its `cniVersion`; otherwise `cniVersion` is lowered to the
//!   newest version both speak. Debian's `host-local` (plugins 1.1.1) stops
//!   at 1.0.0, and a 1.1.0 ADD result differs from 1.0.0 only by optional
//!   fields, so a 1.1.0 network still works with it.
//! - GC and STATUS are only forwarded to a delegate that speaks 1.1.0; an
//!   older one would fail them as unknown commands. GC then releases stale
//!   addresses by a DEL per stale attachment instead (see `gc.rs`).

use std::cell::OnceCell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::Value;

use super::conf::{CniEnv, NetConf, SpecVersion};
use super::error::{CniError, ErrorCode};
use super::result::CniResult;

/// The configured IPAM plugin, found in `CNI_PATH`.
#[derive(Debug)]
pub struct Ipam<'a> {
    /// The executable.
    pub plugin: PathBuf,
    env: &'a CniEnv,
    conf: &'a NetConf,
    versions: OnceCell<Vec<SpecVersion>>,
}

/// Per-call overrides of the attachment variables (GC releasing a stale
/// attachment, which has no `CNI_NETNS`).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `CNI_CONTAINERID`.
    pub container_id: Option<&'a str>,
    /// `CNI_IFNAME`.
    pub ifname: Option<&'a str>,
    /// `CNI_NETNS`.
    pub netns: Option<&'a str>,
}

impl<'a> Ipam<'a> {
    /// Finds `ipam.type` in `CNI_PATH`: code 4 when `CNI_PATH` is unset, 7
    /// when no directory holds it.
    pub fn find(env: &'a CniEnv, conf: &'a NetConf) -> Result<Ipam<'a>, CniError> {
        if env.path.is_empty() {
            return Err(CniError::env(format!(
                "CNI_PATH is not set: it is needed to find the IPAM plugin {:?}",
                conf.ipam_type
            )));
        }
        let plugin = env
            .path
            .iter()
            .map(|d| d.join(&conf.ipam_type))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                CniError::netconf(format!(
                    "IPAM plugin {:?} not found in CNI_PATH {}",
                    conf.ipam_type,
                    env.path_raw.as_deref().unwrap_or_default()
                ))
            })?;
        Ok(Ipam {
            plugin,
            env,
            conf,
            versions: OnceCell::new(),
        })
    }

    /// The versions the plugin reports (asked once).
    pub fn versions(&self) -> Result<&[SpecVersion], CniError> {
        if let Some(v) = self.versions.get() {
            return Ok(v);
        }
        let v = self.ask_versions()?;
        Ok(self.versions.get_or_init(|| v))
    }

    fn ask_versions(&self) -> Result<Vec<SpecVersion>, CniError> {
        #[derive(Deserialize)]
        struct VersionResult {
            #[serde(rename = "supportedVersions")]
            supported: Vec<String>,
        }
        let stdin = format!("{{\"cniVersion\":\"{}\"}}", self.conf.version);
        let out = self.exec("VERSION", None, stdin.as_bytes())?;
        let v: VersionResult = serde_json::from_slice(&out).map_err(|e| {
            CniError::new(
                ErrorCode::DECODE_FAILURE,
                format!("failed to decode the VERSION result of {}", self.name()),
                e.to_string(),
            )
        })?;
        Ok(v.supported.iter().filter_map(|s| s.parse().ok()).collect())
    }

    /// The version to speak to the plugin: the configuration's if it speaks
    /// it, else the newest it speaks that is older and at least `min`.
    fn negotiate(&self, min: SpecVersion) -> Result<Option<SpecVersion>, CniError> {
        let versions = self.versions()?;
        Ok(versions
            .iter()
            .copied()
            .filter(|v| *v >= min && *v <= self.conf.version)
            .max())
    }

    /// The configuration for the plugin at `version`, without the keys in
    /// `strip`.
    fn stdin_for(&self, version: SpecVersion, strip: &[&str]) -> Vec<u8> {
        if version == self.conf.version && strip.iter().all(|k| self.conf.raw.get(k).is_none()) {
            return self.conf.raw_bytes.clone();
        }
        let mut raw = self.conf.raw.clone();
        if let Value::Object(m) = &mut raw {
            m.insert("cniVersion".into(), Value::String(version.to_string()));
            for k in strip {
                m.remove(*k);
            }
        }
        serde_json::to_vec(&raw).expect("netconf serializes")
    }

    fn name(&self) -> String {
        format!("IPAM plugin {}", self.conf.ipam_type)
    }

    /// Code 1 for a plugin that speaks no version usable for `command`.
    fn no_common_version(&self, command: &str, min: SpecVersion) -> CniError {
        CniError::new(
            ErrorCode::INCOMPATIBLE_VERSION,
            "incompatible CNI version",
            format!(
                "{} speaks no version between {min} and {} for {command}",
                self.name(),
                self.conf.version
            ),
        )
    }

    /// ADD: allocates an address for the attachment.
    pub fn add(&self) -> Result<CniResult, CniError> {
        let version = self
            .negotiate(SpecVersion(0, 3, 0))?
            .ok_or_else(|| self.no_common_version("ADD", SpecVersion(0, 3, 0)))?;
        let out = self.exec("ADD", None, &self.stdin_for(version, &[]))?;
        let v: Value = serde_json::from_slice(&out).map_err(|e| {
            CniError::new(
                ErrorCode::DECODE_FAILURE,
                format!("failed to decode the ADD result of {}", self.name()),
                e.to_string(),
            )
        })?;
        CniResult::from_value(&v, &format!("the ADD result of {}", self.name()))
    }

    /// DEL: releases the attachment's address (of `target` when given).
    pub fn del(&self, target: Option<Target<'_>>) -> Result<(), CniError> {
        let version = self
            .negotiate(SpecVersion(0, 3, 0))?
            .ok_or_else(|| self.no_common_version("DEL", SpecVersion(0, 3, 0)))?;
        let strip = ["cni.dev/valid-attachments"];
        self.exec("DEL", target, &self.stdin_for(version, &strip))
            .map(drop)
    }

    /// CHECK: verifies the reservation (needs 0.4.0; skipped below it).
    pub fn check(&self) -> Result<(), CniError> {
        let Some(version) = self.negotiate(SpecVersion::V0_4_0)? else {
            return Ok(());
        };
        self.exec("CHECK", None, &self.stdin_for(version, &[]))
            .map(drop)
    }

    /// GC or STATUS, when the plugin speaks 1.1.0; returns false (and does
    /// nothing) when it does not.
    pub fn forward_1_1(&self, command: &str) -> Result<bool, CniError> {
        let Some(version) = self.negotiate(SpecVersion::V1_1_0)? else {
            return Ok(false);
        };
        self.exec(command, None, &self.stdin_for(version, &[]))?;
        Ok(true)
    }

    /// Runs the plugin; its stdout on success, its error result (or what it
    /// printed) as a [`CniError`] otherwise.
    fn exec(
        &self,
        command: &str,
        target: Option<Target<'_>>,
        stdin: &[u8],
    ) -> Result<Vec<u8>, CniError> {
        let mut cmd = Command::new(&self.plugin);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("CNI_COMMAND", command);
        let env = self.env;
        let vars = [
            (
                "CNI_CONTAINERID",
                target.map_or(env.container_id.as_deref(), |t| t.container_id),
            ),
            (
                "CNI_IFNAME",
                target.map_or(env.ifname.as_deref(), |t| t.ifname),
            ),
            (
                "CNI_NETNS",
                target.map_or(env.netns.as_deref(), |t| t.netns),
            ),
            ("CNI_ARGS", env.args.as_deref()),
            ("CNI_PATH", env.path_raw.as_deref()),
        ];
        for (k, v) in vars {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let fail = |e: std::io::Error| {
            CniError::new(
                ErrorCode::DELEGATE,
                format!("failed to run {}", self.name()),
                format!("{} {command}: {e}", self.plugin.display()),
            )
        };
        let mut child = cmd.spawn().map_err(fail)?;
        if let Some(mut pipe) = child.stdin.take() {
            // A plugin that exits without reading stdin closes the pipe; its
            // exit status and output then say what went wrong.
            let _ = pipe.write_all(stdin);
        }
        let out = child.wait_with_output().map_err(fail)?;
        if out.status.success() {
            return Ok(out.stdout);
        }
        Err(delegate_error(
            &self.name(),
            command,
            &self.plugin,
            &out.stdout,
        ))
    }
}

/// The delegate's error result with its code, or code 104 with its output.
pub(super) fn delegate_error(name: &str, command: &str, plugin: &Path, stdout: &[u8]) -> CniError {
    #[derive(Deserialize)]
    struct ErrorResult {
        code: u32,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    match serde_json::from_slice::<ErrorResult>(stdout) {
        Ok(e) if e.code != 0 => CniError::new(
            ErrorCode(e.code),
            format!("{name} {command} failed: {}", e.msg),
            e.details,
        ),
        _ => CniError::new(
            ErrorCode::DELEGATE,
            format!("{name} {command} failed"),
            format!(
                "{} printed: {}",
                plugin.display(),
                String::from_utf8_lossy(stdout).trim()
            ),
        ),
    }
}
