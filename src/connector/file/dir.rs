//! What makes a directory a borrowstore directory: the marker that says
//! it is one, and the check that it is on a local file system.

use std::fs::{self, File};
use std::io::{self, ErrorKind, Write};
use std::path::Path;

use crate::key::ClaimId;

/// The marker's file name, in the store directory.
pub(super) const MARKER: &str = "borrowstore.dir";

/// The marker's first line.
const MARKER_TITLE: &str = "borrowstore file store";

/// The directory format this build reads and writes (the marker's second
/// line is `format 2`: the state table).
const FORMAT: u32 = 2;

/// Writes the marker into `root` unless it is there: written to a
/// temporary file in `root` and renamed into place, so no reader ever sees
/// half of one. Called once the directory's layout exists.
pub(super) fn write_marker(root: &Path) -> io::Result<()> {
    let path = root.join(MARKER);
    if path.exists() {
        return check_marker(root);
    }
    let tmp = root
        .join("tmp")
        .join(format!("{}.marker", ClaimId::random()));
    let mut f = File::create(&tmp)?;
    f.write_all(format!("{MARKER_TITLE}\nformat {FORMAT}\n").as_bytes())?;
    drop(f);
    fs::rename(&tmp, &path)
}

/// Whether `root` is a borrowstore directory of a format this build reads;
/// the error says what it is instead (its kind: `NotFound` without a
/// marker, `InvalidData` for a marker that is not one of ours).
pub(super) fn check_marker(root: &Path) -> io::Result<()> {
    let path = root.join(MARKER);
    let text = match fs::read(&path) {
        Ok(t) => t,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Err(io::Error::new(
                ErrorKind::NotFound,
                format!(
                    "not a borrowstore directory: it has no {MARKER}; Store::open creates \
                     one, proxies and tickets never do"
                ),
            ));
        }
        Err(e) => return Err(e),
    };
    let text = String::from_utf8_lossy(&text);
    let mut lines = text.lines();
    let format = (lines.next() == Some(MARKER_TITLE))
        .then(|| lines.next()?.strip_prefix("format ")?.parse::<u32>().ok())
        .flatten();
    match format {
        Some(FORMAT) => Ok(()),
        Some(n) => Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("the directory has format {n}; this borrowstore reads format {FORMAT}"),
        )),
        None => Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("{MARKER} is not a borrowstore marker"),
        )),
    }
}

/// File systems whose mappings are not kept coherent between the
/// processes of one host (or between hosts): a state table there would not
/// be shared.
const NETWORK_FS: [&str; 9] = [
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "9p",
    "fuse.sshfs",
    "afs",
    "ceph",
];

/// Refuses a directory on a network file system, where it can tell (Linux:
/// the mount that holds `root`, from `/proc/self/mountinfo`).
pub(super) fn refuse_network_fs(root: &Path) -> io::Result<()> {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return Ok(());
    };
    let path = fs::canonicalize(root)?;
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        let (Some(mount), Some(fstype)) = (fields.get(4), fields.get(dash + 1)) else {
            continue;
        };
        let mount = mount.replace("\\040", " ");
        if path.starts_with(&mount) && best.as_ref().is_none_or(|(n, _)| mount.len() >= *n) {
            best = Some((mount.len(), (*fstype).to_owned()));
        }
    }
    match best {
        Some((_, fstype)) if NETWORK_FS.contains(&fstype.as_str()) => Err(io::Error::new(
            ErrorKind::Unsupported,
            format!(
                "it is on a {fstype} file system: a file store needs a local file system \
                 (or tmpfs), whose memory mappings every process shares"
            ),
        )),
        _ => Ok(()),
    }
}
