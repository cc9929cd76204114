//! Which files the Disk throttles. REST uploads of `compressed`, `data` and
//! `video` media types crawl at about 128 KiB/s; the Disk decides from the
//! destination name when the upload link is requested, not from the bytes.
//! So ysync uploads such a file under a neutral temporary name in the same
//! folder and then moves it onto its real name (`throttle_workaround`).
//!
//! What is confirmed (yadisk's docs/known_issues.rst, R7 in
//! real-disk-evidence.md): the media types `data` (.db, .dat), `compressed`
//! (.zip, .gz, .tgz, .rar) and `video` (.3gp, .mp4, .avi) are throttled; the
//! type comes from the name; renaming afterwards is the workaround. The other
//! extensions of those types below are guesses from the same families. Audio
//! is a guess from one report (a 14 MB .mp3 took about 2 minutes, ~120 KB/s:
//! yadisk issue 16) and is included: a wrong guess costs one move request, a
//! missed type crawls.

/// Extensions (lower case, without the dot) the Disk throttles or probably
/// does, with the media type it gives them; `// confirmed` marks the ones a
/// source shows. `throttled_ext` in the config adds more.
pub const THROTTLED: &[(&str, &str)] = &[
    ("7z", "compressed"),
    ("bz2", "compressed"),
    ("gz", "compressed"),  // confirmed
    ("rar", "compressed"), // confirmed
    ("tar", "compressed"),
    ("tgz", "compressed"), // confirmed
    ("xz", "compressed"),
    ("zip", "compressed"), // confirmed
    ("zst", "compressed"),
    ("dat", "data"), // confirmed
    ("db", "data"),  // confirmed
    ("sqlite", "data"),
    ("3gp", "video"), // confirmed
    ("avi", "video"), // confirmed
    ("m4v", "video"),
    ("mkv", "video"),
    ("mov", "video"),
    ("mp4", "video"), // confirmed
    ("mpg", "video"),
    ("mpeg", "video"),
    ("mts", "video"),
    ("ts", "video"),
    ("webm", "video"),
    ("wmv", "video"),
    ("aac", "audio"),
    ("flac", "audio"),
    ("m4a", "audio"),
    ("mp3", "audio"), // one report: ~120 KB/s
    ("ogg", "audio"),
    ("opus", "audio"),
    ("wav", "audio"),
    ("wma", "audio"),
];

/// Is `path` throttled, by the table or by one of the `extra` extensions?
pub fn is_throttled(path: &str, extra: &[String]) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let Some((_, ext)) = name.rsplit_once('.') else { return false };
    let ext = ext.to_ascii_lowercase();
    THROTTLED.iter().any(|(e, _)| *e == ext) || extra.contains(&ext)
}

/// Every name ysync gives a file of its own on the Disk (a temporary
/// upload) or locally (a restore's partial download) starts so. A name
/// that merely starts so is not taken for ysync's: on the Disk only the
/// exact temporary name of an upload it made ([`crate::state::State::temp_names`]),
/// locally only [`crate::scan::is_own_temporary`].
pub const TEMP_PREFIX: &str = ".ysync-";

/// The name that every kept-aside folder starts with (after `.ysync-`):
/// the walk never mirrors it ([`crate::scan::is_own_temporary`]).
pub const ASIDE_PREFIX: &str = "replaced-";

/// The temporary name for `path` (relative): a hidden `.txt` file (a
/// `document`, never throttled) in the same folder, the same for every try,
/// so that a crash leaves a name the next run knows to remove.
pub fn temp_name(path: &str) -> String {
    let tag = crate::digest::short_hash(path.as_bytes());
    match path.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{TEMP_PREFIX}{tag}.part.txt"),
        None => format!("{TEMP_PREFIX}{tag}.part.txt"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_by_extension_case_insensitively() {
        assert!(is_throttled("a/b/Holiday.MP4", &[]));
        assert!(is_throttled("backup.tar.gz", &[]));
        assert!(!is_throttled("notes.txt", &[]));
        assert!(!is_throttled("Makefile", &[]));
        assert!(is_throttled("song.mp3", &[]) && is_throttled("Live.FLAC", &[]));
        assert!(!is_throttled("scan.pdf", &[]));
        assert!(is_throttled("scan.pdf", &["pdf".to_string()]));
    }

    #[test]
    fn temp_names_stay_in_the_folder_and_are_stable() {
        assert_eq!(temp_name("a/b/x.zip"), temp_name("a/b/x.zip"));
        assert!(temp_name("a/b/x.zip").starts_with("a/b/.ysync-"));
        assert!(temp_name("x.zip").starts_with(".ysync-") && temp_name("x.zip").ends_with(".part.txt"));
        assert_ne!(temp_name("a/x.zip"), temp_name("a/y.zip"));
    }
}
