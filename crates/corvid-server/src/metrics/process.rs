//! What the process uses, read from `/proc/self` at each scrape (Linux; elsewhere these
//! metrics are left out): resident memory, open file descriptors and their limit, and the
//! TCP connections it holds, inbound (to a port it listens on) or outbound.

use std::collections::HashSet;

/// The figures of one scrape; `None` where `/proc` could not tell.
#[derive(Debug, Default)]
pub(crate) struct ProcessFigures {
    pub resident_memory_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub connections: Option<Connections>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Connections {
    pub inbound: u64,
    pub outbound: u64,
}

pub(crate) fn read_process() -> ProcessFigures {
    let sockets = socket_inodes();
    ProcessFigures {
        resident_memory_bytes: std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|it| resident_bytes(&it)),
        open_fds: sockets.as_ref().map(|(n_fds, _)| *n_fds),
        max_fds: std::fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|it| max_open_files(&it)),
        connections: sockets.map(|(_, inodes)| {
            let mut tables = String::new();
            for path in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
                if let Ok(text) = std::fs::read_to_string(path) {
                    tables.push_str(&text);
                }
            }
            count_connections(&tables, &inodes)
        }),
    }
}

/// `VmRSS:   12345 kB` of `/proc/self/status`, in bytes.
fn resident_bytes(status: &str) -> Option<u64> {
    let line = status.lines().find(|it| it.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|it| it.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The number of open descriptors and the inodes of those that are sockets.
fn socket_inodes() -> Option<(u64, HashSet<u64>)> {
    let mut n_fds: u64 = 0;
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        n_fds += 1;
        if let Ok(target) = std::fs::read_link(entry.path())
            && let Some(inode) = target
                .to_str()
                .and_then(|it| it.strip_prefix("socket:["))
                .and_then(|it| it.strip_suffix(']'))
                .and_then(|it| it.parse().ok())
        {
            inodes.insert(inode);
        }
    }
    // The listing's own descriptor was open while it was read.
    Some((n_fds.saturating_sub(1), inodes))
}

/// Counts the established connections of `/proc/net/tcp{,6}` rows whose socket is one of
/// `ours`: inbound when the local port is one we listen on, outbound otherwise.
fn count_connections(tables: &str, ours: &HashSet<u64>) -> Connections {
    // (local port, state, inode) of our sockets.
    let rows: Vec<(u16, &str, u64)> = tables
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = fields.get(1)?.rsplit(':').next()?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let inode: u64 = fields.get(9)?.parse().ok()?;
            ours.contains(&inode)
                .then_some((port, *fields.get(3)?, inode))
        })
        .collect();
    const ESTABLISHED: &str = "01";
    const LISTEN: &str = "0A";
    let listening: HashSet<u16> = rows
        .iter()
        .filter(|(_, state, _)| *state == LISTEN)
        .map(|(port, _, _)| *port)
        .collect();
    let mut counted = Connections::default();
    for (port, state, _) in &rows {
        if *state != ESTABLISHED {
            continue;
        }
        if listening.contains(port) {
            counted.inbound += 1;
        } else {
            counted.outbound += 1;
        }
    }
    counted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_as_linux_writes_them() {
        assert_eq!(
            resident_bytes("Name:\tcorvid\nVmRSS:\t   20480 kB\nVmSwap:\t0 kB\n"),
            Some(20480 * 1024)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        let tables = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 101 1 0000000000000000 20 4 30 10 -1\n\
   2: 0100007F:D432 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 102 1 0000000000000000 20 4 30 10 -1\n\
   3: 0100007F:D433 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 20 4 30 10 -1\n";
        let ours: HashSet<u64> = [100, 101, 102].into_iter().collect();
        assert_eq!(
            count_connections(tables, &ours),
            Connections {
                inbound: 1,
                outbound: 1
            }
        );
    }

    #[test]
    fn this_process_can_be_read() {
        let figures = read_process();
        assert!(figures.resident_memory_bytes.unwrap() > 1024 * 1024);
        assert!(figures.open_fds.unwrap() >= 3);
        assert!(figures.max_fds.unwrap() >= figures.open_fds.unwrap());
    }
}
