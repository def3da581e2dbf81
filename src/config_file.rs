//! The configuration file: a TOML file of the same options as the command line, for an
//! office that sets Hallway up once and forgets it.
//!
//! Every option is declared once, in `cli.rs`, with its flag, its `HALLWAY_*` variable, its
//! default and its help; the file adds no declarations of its own. Its keys are the flags'
//! names (`listen = "0.0.0.0:8088"`, `max-frame = 65536`, `no-mdns = true`; `max_frame` is
//! read the same), and each value is checked by the flag's own parser. Precedence is file <
//! environment < flag: a value from the file becomes the option's environment variable, set
//! before the command line is parsed, unless that variable is already set. An unknown key or
//! a bad value stops start-up with the key and the file named.
//!
//! The file is `--config PATH` (or `HALLWAY_CONFIG`), else `/etc/hallway/hallway.toml` when it
//! exists. `hallway config` prints the effective value of every option and where it came
//! from.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{ArgAction, ArgMatches, Command, parser::ValueSource};

/// The file read when neither `--config` nor `HALLWAY_CONFIG` names one, if it exists.
pub const DEFAULT_PATH: &str = "/etc/hallway/hallway.toml";

/// What was read from a configuration file.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The file, if one was read.
    pub path: Option<PathBuf>,
    /// Argument ids whose value came from the file (their variable was unset).
    pub from_file: Vec<String>,
}

/// The file named on the command line (`--config PATH` or `--config=PATH`), by
/// `HALLWAY_CONFIG`, or the default one when it exists.
fn chosen(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(arg) = it.next() {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            break;
        }
        if arg == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(path) = arg.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    if let Some(path) = std::env::var_os("HALLWAY_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    Path::new(DEFAULT_PATH).exists().then(|| PathBuf::from(DEFAULT_PATH))
}

/// Reads the configuration file, checks every key and value against the options of `command`,
/// and sets each value's environment variable where it is not set already.
///
/// Must run before any other thread exists (it changes this process's environment): `main`
/// calls it first.
pub fn load(command: &Command, args: &[OsString]) -> Result<Loaded, String> {
    let Some(path) = chosen(args) else { return Ok(Loaded::default()) };
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("cannot read the configuration file {}: {e}", path.display()))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| format!("{}: not valid TOML: {e}", path.display()))?;
    let mut values = Vec::new();
    for (key, value) in &table {
        let name = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(name.as_str()) && a.get_env().is_some() && name != "config")
            .ok_or_else(|| {
                format!(
                    "{}: unknown key `{key}` (the keys are the options of `hallway --help`, such as listen or max-frame)",
                    path.display()
                )
            })?;
        let text = match (arg.get_action(), value) {
            (ArgAction::SetTrue, toml::Value::Boolean(b)) => b.to_string(),
            (ArgAction::SetTrue, _) => return Err(format!("{}: `{key}` is true or false", path.display())),
            (_, toml::Value::String(s)) => s.clone(),
            (_, toml::Value::Integer(i)) => i.to_string(),
            (_, toml::Value::Float(f)) => f.to_string(),
            (_, toml::Value::Boolean(b)) => b.to_string(),
            (ArgAction::Append, toml::Value::Array(items)) => {
                let items: Result<Vec<_>, _> = items.iter().map(|i| i.as_str().map(str::to_owned).ok_or(())).collect();
                items.map_err(|()| format!("{}: `{key}` is a list of strings", path.display()))?.join(",")
            }
            _ => return Err(format!("{}: `{key}` has a value of the wrong kind ({})", path.display(), value.type_str())),
        };
        if arg.get_action().takes_values() {
            // The flag's own parser, on the value as if given as the flag.
            let check = Command::new("hallway").no_binary_name(true).arg(arg.clone().required(false));
            check.try_get_matches_from([format!("--{name}"), text.clone()]).map_err(|e| {
                let why = e.to_string();
                let why = why.trim().trim_start_matches("error: ").lines().next().unwrap_or_default().to_owned();
                format!("{}: `{key}`: {why}", path.display())
            })?;
        }
        let env = arg.get_env().expect("found by its variable").to_owned();
        values.push((arg.get_id().to_string(), env, text));
    }
    let mut from_file = Vec::new();
    for (id, env, text) in values {
        if std::env::var_os(&env).is_none() {
            // SAFETY: called from `main` before the runtime or any other thread starts, so
            // nothing reads the environment concurrently.
            unsafe { std::env::set_var(&env, &text) };
            from_file.push(id);
        }
    }
    Ok(Loaded { path: Some(path), from_file })
}

/// Every option's effective value and where it came from, as `hallway config` prints it: one
/// line each, `key = value  # from ...`, valid TOML to start a file from.
pub fn describe(command: &Command, matches: &ArgMatches, loaded: &Loaded) -> String {
    let mut lines = BTreeMap::new();
    for arg in command.get_arguments() {
        let (Some(long), Some(env)) = (arg.get_long(), arg.get_env()) else { continue };
        if long == "config" {
            continue;
        }
        let id = arg.get_id().as_str();
        let env = env.to_string_lossy();
        let source = match matches.value_source(id) {
            Some(ValueSource::CommandLine) => format!("flag --{long}"),
            Some(ValueSource::EnvVariable) if loaded.from_file.iter().any(|f| f == id) => {
                format!("file {}", loaded.path.as_deref().map(Path::display).map(|d| d.to_string()).unwrap_or_default())
            }
            Some(ValueSource::EnvVariable) => format!("environment {env}"),
            _ => "default".to_string(),
        };
        let value = match arg.get_action() {
            ArgAction::SetTrue => matches.get_flag(id).to_string(),
            _ => {
                let raw: Vec<String> =
                    matches.get_raw(id).map(|v| v.map(|s| s.to_string_lossy().into_owned()).collect()).unwrap_or_default();
                match arg.get_action() {
                    ArgAction::Append => format!("[{}]", raw.iter().map(|s| toml_string(s)).collect::<Vec<_>>().join(", ")),
                    _ => match raw.first() {
                        Some(v) if v.parse::<i64>().is_ok() => v.clone(),
                        Some(v) => toml_string(v),
                        None => {
                            lines.insert(long.to_string(), format!("# {long} is not set"));
                            continue;
                        }
                    },
                }
            }
        };
        lines.insert(long.to_string(), format!("{long} = {value}  # from {source}"));
    }
    let mut out = match &loaded.path {
        Some(path) => format!("# The configuration in effect (file: {})\n", path.display()),
        None => format!("# The configuration in effect (no file: neither --config nor {DEFAULT_PATH})\n"),
    };
    for line in lines.values() {
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// A TOML basic string: JSON's escapes are TOML's.
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}
