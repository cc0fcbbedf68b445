//! One-line error messages, as the CLIs (`ofctl`, `pktgen`) print them:
//! every error is one line on stderr, whatever produced it.

/// The non-empty lines of `msg`, trimmed and joined with spaces.
pub fn one_line(msg: &str) -> String {
    msg.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The one-line form of a clap error as clap renders it
/// (`clap::Error::render`): its `error: ` line, the hints clap puts on lines
/// of their own (`tip: ...`, `[possible values: ...]`), then
/// ` (try 'PROG --help')`.
pub fn clap_error_line(rendered: &str, prog: &str) -> String {
    let mut msg = rendered
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or("invalid command line")
        .to_string();
    for line in rendered.lines().map(str::trim) {
        if let Some(tip) = line.strip_prefix("tip: ") {
            msg = format!("{msg}; {tip}");
        } else if line.starts_with("[possible values: ") {
            msg = format!("{msg} {line}");
        }
    }
    format!("{msg} (try '{prog} --help')")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_joined() {
        assert_eq!(one_line("a\n  b \r\n\nc"), "a b c");
        assert_eq!(one_line("single"), "single");
    }

    #[test]
    fn clap_errors_keep_their_hints() {
        let rendered = "error: invalid value 'x' for '--mode <M>'\n  [possible values: a, b]\n\n  tip: a similar value exists: 'a'\n\nFor more information, try '--help'.\n";
        assert_eq!(
            clap_error_line(rendered, "tool"),
            "invalid value 'x' for '--mode <M>' [possible values: a, b]; a similar value exists: 'a' (try 'tool --help')"
        );
        assert_eq!(
            clap_error_line("garbage", "tool"),
            "invalid command line (try 'tool --help')"
        );
    }
}
