//! Batched UDP receive and send (`recvmmsg` / `sendmmsg`, Linux): the only `unsafe` in the
//! tracker, kept to the two system calls and the address conversions they need.
//!
//! Safety argument, once for the module: every pointer handed to the kernel points into a
//! buffer owned by [`Batch`] or borrowed by the call, outlives the call, and is described with
//! its true length; the kernel writes at most that many bytes. Returned lengths are clamped to
//! the buffer sizes before anyone slices with them.
#![allow(unsafe_code)]

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd;

/// Datagram size received at most (larger ones are truncated, then fail to decode).
pub const MAX_DATAGRAM: usize = 2048;

/// Reusable buffers for one socket's batches.
pub struct Batch {
    bufs: Vec<[u8; MAX_DATAGRAM]>,
    addrs: Vec<libc::sockaddr_storage>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    lens: Vec<usize>,
}

impl Batch {
    /// Room for `n` datagrams.
    pub fn new(n: usize) -> Self {
        // SAFETY: all-zero is a valid sockaddr_storage, iovec and mmsghdr (null pointers, zero lengths).
        unsafe {
            Batch {
                bufs: vec![[0u8; MAX_DATAGRAM]; n],
                addrs: vec![zeroed(); n],
                iov: vec![zeroed(); n],
                hdrs: vec![zeroed(); n],
                lens: vec![0; n],
            }
        }
    }

    /// Block until at least one datagram arrives (or the socket's read timeout), then take as
    /// many as are queued. Returns how many; read them with [`Batch::get`].
    pub fn recv(&mut self, sock: &UdpSocket) -> io::Result<usize> {
        let n = self.bufs.len();
        for i in 0..n {
            self.iov[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            // SAFETY: zeroed msghdr is valid; fields are set to buffers owned by self.
            let mut h: libc::msghdr = unsafe { zeroed() };
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut self.iov[i];
            h.msg_iovlen = 1;
            self.hdrs[i] = libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            };
        }
        // SAFETY: hdrs holds n initialised headers pointing into self's buffers (see module doc).
        let r = unsafe {
            libc::recvmmsg(
                sock.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        let got = (r as usize).min(n);
        for i in 0..got {
            self.lens[i] = (self.hdrs[i].msg_len as usize).min(MAX_DATAGRAM);
        }
        Ok(got)
    }

    /// The `i`th datagram of the last [`Batch::recv`] and its source.
    pub fn get(&self, i: usize) -> Option<(&[u8], SocketAddr)> {
        let len = *self.lens.get(i)?;
        let addr = from_storage(self.addrs.get(i)?)?;
        Some((self.bufs.get(i)?.get(..len)?, addr))
    }
}

fn from_storage(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large enough for.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const libc::sockaddr_storage).cast() };
            let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn to_storage(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    // SAFETY: zeroed storage is valid; we write a sockaddr_in/in6, both smaller than the storage.
    unsafe {
        *out = zeroed();
        match addr {
            SocketAddr::V4(a) => {
                let p: &mut libc::sockaddr_in = &mut *(out as *mut libc::sockaddr_storage).cast();
                p.sin_family = libc::AF_INET as libc::sa_family_t;
                p.sin_port = a.port().to_be();
                p.sin_addr = libc::in_addr {
                    s_addr: u32::from(*a.ip()).to_be(),
                };
                size_of::<libc::sockaddr_in>() as libc::socklen_t
            }
            SocketAddr::V6(a) => {
                let p: &mut libc::sockaddr_in6 = &mut *(out as *mut libc::sockaddr_storage).cast();
                p.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                p.sin6_port = a.port().to_be();
                p.sin6_addr = libc::in6_addr {
                    s6_addr: a.ip().octets(),
                };
                p.sin6_flowinfo = a.flowinfo();
                p.sin6_scope_id = a.scope_id();
                size_of::<libc::sockaddr_in6>() as libc::socklen_t
            }
        }
    }
}

/// Reusable headers for sending a batch of replies.
pub struct SendBatch {
    addrs: Vec<libc::sockaddr_storage>,
    iov: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl SendBatch {
    /// Room for `n` replies.
    pub fn new(n: usize) -> Self {
        // SAFETY: all-zero is valid for these plain C structs.
        unsafe {
            SendBatch {
                addrs: vec![zeroed(); n],
                iov: vec![zeroed(); n],
                hdrs: vec![zeroed(); n],
            }
        }
    }

    /// Send `packets` (at most the batch size), retrying the rest after a partial send.
    /// Returns how many the kernel took.
    pub fn send(&mut self, sock: &UdpSocket, packets: &[(&[u8], SocketAddr)]) -> io::Result<usize> {
        let n = packets.len().min(self.hdrs.len());
        for (i, (bytes, addr)) in packets.iter().take(n).enumerate() {
            let len = to_storage(*addr, &mut self.addrs[i]);
            self.iov[i] = libc::iovec {
                iov_base: bytes.as_ptr() as *mut libc::c_void,
                iov_len: bytes.len(),
            };
            // SAFETY: zeroed msghdr is valid; pointers go to self's storage and the caller's bytes,
            // which outlive the call; the kernel only reads them.
            let mut h: libc::msghdr = unsafe { zeroed() };
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = len;
            h.msg_iov = &mut self.iov[i];
            h.msg_iovlen = 1;
            self.hdrs[i] = libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            };
        }
        let mut sent = 0;
        while sent < n {
            // SAFETY: hdrs[sent..n] are initialised as above.
            let r = unsafe {
                libc::sendmmsg(
                    sock.as_raw_fd(),
                    self.hdrs[sent..].as_mut_ptr(),
                    (n - sent) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                let e = io::Error::last_os_error();
                if sent == 0 {
                    return Err(e);
                }
                break;
            }
            sent += r as usize;
        }
        Ok(sent)
    }
}
