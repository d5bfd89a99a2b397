//! A one-file ustar archive: what the Docker Engine API takes to put a file
//! into a container (`PUT /containers/{id}/archive`). One regular file is
//! all we ever upload, so a 60-line writer beats a dependency.

const BLOCK: usize = 512;

/// A file to put in the archive.
pub struct TarFile<'a> {
    /// A plain file name (no directories), at most 100 bytes.
    pub name: &'a str,
    pub contents: &'a [u8],
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
}

/// Writes `value` as zero-padded octal filling `field` but its last byte,
/// which stays NUL, as POSIX ustar expects.
fn octal(field: &mut [u8], value: u64) -> Result<(), String> {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return Err(format!(
            "{value} does not fit in a {digits}-digit tar field"
        ));
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Ok(())
}

/// The archive bytes: one header block, the contents padded to a block, and
/// the two zero blocks that end an archive.
pub fn single_file(file: &TarFile<'_>) -> Result<Vec<u8>, String> {
    let name = file.name.as_bytes();
    if name.is_empty() || name.len() > 100 || file.name.contains('/') {
        return Err(format!(
            "{:?} is not a plain file name of at most 100 bytes",
            file.name
        ));
    }
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], u64::from(file.mode))?;
    octal(&mut h[108..116], file.uid)?;
    octal(&mut h[116..124], file.gid)?;
    octal(&mut h[124..136], file.contents.len() as u64)?;
    octal(&mut h[136..148], file.mtime)?;
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field read as eight blanks.
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|b| u64::from(*b)).sum();
    octal(&mut h[148..155], sum)?;
    h[155] = b' ';

    let padded = file.contents.len().div_ceil(BLOCK) * BLOCK;
    let mut out = Vec::with_capacity(BLOCK + padded + 2 * BLOCK);
    out.extend_from_slice(&h);
    out.extend_from_slice(file.contents);
    out.resize(BLOCK + padded + 2 * BLOCK, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        single_file(&TarFile {
            name: "postgresql.auto.conf",
            contents: b"wal_buffers = '16MB'\n",
            mode: 0o600,
            uid: 999,
            gid: 999,
            mtime: 1_700_000_000,
        })
        .unwrap()
    }

    #[test]
    fn layout_and_checksum_follow_ustar() {
        let t = sample();
        assert_eq!(t.len(), 4 * BLOCK);
        assert_eq!(&t[..20], b"postgresql.auto.conf");
        assert_eq!(&t[100..108], b"0000600\0");
        assert_eq!(&t[108..116], b"0001747\0");
        assert_eq!(&t[124..136], b"00000000025\0");
        let mut header = t[..BLOCK].to_vec();
        let stored =
            u64::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8).unwrap();
        header[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, header.iter().map(|b| u64::from(*b)).sum::<u64>());
        assert_eq!(&t[BLOCK..BLOCK + 21], b"wal_buffers = '16MB'\n");
    }

    #[test]
    fn system_tar_reads_it_back() {
        // Cross-check with a real tar when the host has one.
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar");
        std::fs::write(&archive, sample()).unwrap();
        let Ok(out) = std::process::Command::new("tar")
            .arg("-xOf")
            .arg(&archive)
            .output()
        else {
            return;
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"wal_buffers = '16MB'\n");
    }

    #[test]
    fn refuses_paths() {
        let f = TarFile {
            name: "../x",
            contents: b"",
            mode: 0o600,
            uid: 0,
            gid: 0,
            mtime: 0,
        };
        assert!(single_file(&f).is_err());
    }
}
