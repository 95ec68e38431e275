//! How the loops share one port (`--balance`): each loop gets its own
//! poller and a listener to accept from, registered as chapter 4's loop
//! expects ([`LISTENER`]). The three ways differ only here.
//!
//! - `shared`: every loop watches the same listening socket (each holds
//!   a duplicate descriptor of it). A connection makes it readable, and
//!   the kernel wakes every loop that waits on it: the thundering herd.
//! - `exclusive`: the same socket, added with EPOLLEXCLUSIVE, so that a
//!   connection wakes one waiting loop (or a few), not all.
//! - `reuseport`: a listening socket per loop, all bound to the same port
//!   with SO_REUSEPORT. The kernel picks one for each new connection by a
//!   hash of its addresses and ports, before any loop is involved.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;

use ch04_epoll::poller::{Interest, Poller};
use ch04_epoll::LISTENER;
use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog,
    SockFlag, SockType, SockaddrStorage,
};
use protocol::{Balance, PollerKind};

/// One loop's share of the port: its poller, which already watches its
/// listener as [`LISTENER`].
#[derive(Debug)]
pub struct Share {
    /// The loop's own epoll instance.
    pub poller: Poller,
    /// What the loop accepts from: the shared socket, or its own.
    pub listener: TcpListener,
}

// ANCHOR: shares
/// Splits `listener` into `loops` shares, one per event loop, the way
/// `balance` says.
///
/// # Errors
///
/// If a poller, a duplicate descriptor or (`reuseport`) another socket on
/// the port cannot be had.
pub fn shares(
    listener: TcpListener,
    balance: Balance,
    loops: u32,
) -> io::Result<Vec<Share>> {
    prepare(&listener)?;
    let mut shares = Vec::new();
    for n in 0..loops {
        let listener = match balance {
            // The same socket, through a descriptor of the loop's own.
            Balance::Shared | Balance::Exclusive => listener.try_clone()?,
            Balance::Reuseport if n == 0 => {
                // Bound already, without the option. Turning it on now
                // lets the others join: the kernel looks at every
                // socket's option on each later bind, and groups the
                // listeners when the second one listens.
                setsockopt(&listener, sockopt::ReusePort, &true)?;
                listener.try_clone()?
            }
            Balance::Reuseport => reuseport_listener(listener.local_addr()?)?,
        };
        let mut poller = Poller::new(PollerKind::Epoll)?;
        if balance == Balance::Exclusive {
            poller.add_exclusive(&listener, LISTENER, Interest::READ)?;
        } else {
            poller.add(&listener, LISTENER, Interest::READ)?;
        }
        shares.push(Share { poller, listener });
    }
    Ok(shares)
}
// ANCHOR_END: shares

/// Another listening socket on `addr`, with SO_REUSEPORT set before the
/// bind, as the kernel requires, and SO_REUSEADDR as std sets it on the
/// first: without it the port's TIME_WAIT connections (left by an earlier
/// server on the same port) would refuse the bind.
fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let family = match addr {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    // CLOEXEC: a child process started later must not inherit it.
    let socket =
        socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&socket, sockopt::ReuseAddr, &true)?;
    setsockopt(&socket, sockopt::ReusePort, &true)?;
    bind(socket.as_raw_fd(), &SockaddrStorage::from(addr))?;
    let listener = TcpListener::from(socket);
    prepare(&listener)?;
    Ok(listener)
}

/// A long backlog and non-blocking accepts, as chapter 4's `serve` sets
/// them. The backlog belongs to the socket, so with `shared` and
/// `exclusive` every loop drains one queue; with `reuseport` each loop has
/// a queue of its own.
fn prepare(listener: &TcpListener) -> io::Result<()> {
    // Listening again on a listening socket only changes its backlog.
    listen(listener, Backlog::MAXALLOWABLE)?;
    listener.set_nonblocking(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;
    use std::time::Duration;

    use ch04_epoll::poller::Events;

    fn listener() -> TcpListener {
        TcpListener::bind("127.0.0.1:0").expect("bind")
    }

    /// Whether the share's poller reports its listener within `wait`.
    fn reports_listener(share: &mut Share, wait: Duration) -> bool {
        let mut events = Events::with_capacity(8);
        share.poller.wait(&mut events, Some(wait)).expect("wait");
        let reported = events.iter().any(|e| e.token == LISTENER);
        reported
    }

    /// Every balance gives each loop a listener on the one port; with
    /// reuseport they are distinct sockets, otherwise one socket.
    #[test]
    fn every_share_listens_on_the_port() {
        for balance in [Balance::Shared, Balance::Exclusive, Balance::Reuseport]
        {
            let first = listener();
            let addr = first.local_addr().expect("address");
            let shares = shares(first, balance, 3).expect("shares");
            assert_eq!(shares.len(), 3);
            for share in &shares {
                assert_eq!(share.listener.local_addr().expect("addr"), addr);
            }
        }
    }

    /// An exclusive registration, which epoll will not modify in place,
    /// still pauses (no report while a connection waits) and resumes:
    /// chapter 4's pause on EMFILE depends on it.
    #[test]
    fn an_exclusive_listener_pauses_and_resumes() {
        let first = listener();
        let addr = first.local_addr().expect("address");
        let mut shares = shares(first, Balance::Exclusive, 1).expect("shares");
        let share = &mut shares[0];
        share
            .poller
            .modify(&share.listener, LISTENER, Interest::NONE)
            .expect("pause");
        let _client = TcpStream::connect(addr).expect("connect");
        assert!(!reports_listener(share, Duration::from_millis(100)));
        share
            .poller
            .modify(&share.listener, LISTENER, Interest::READ)
            .expect("resume");
        assert!(reports_listener(share, Duration::from_secs(10)));
    }
}
