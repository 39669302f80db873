//! The tracker client's readers on arbitrary bytes: an HTTP response (open and closed, and cut
//! anywhere), a tracker URL, and datagrams to a UDP exchange in flight. Nothing may panic, and
//! a body found must lie inside the buffer.
#![no_main]

use enjambre_core::tracker::client::{
    read_response, Retransmit, TrackerUrl, UdpAnnounce, UdpTracker, MAX_REQUEST,
};
use enjambre_core::tracker::AnnounceEvent;
use enjambre_core::{InfoHash, Instant, PeerId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for eof in [false, true] {
        let mut buf = data.to_vec();
        if let Ok(Some(reply)) = read_response(&mut buf, eof) {
            assert!(reply.body.start <= reply.body.end && reply.body.end <= buf.len());
        }
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = TrackerUrl::parse(text);
    }
    let mut udp = UdpTracker::new(Retransmit::BEP15, u64::from(data.len() as u32));
    udp.announce(
        Instant::ZERO,
        UdpAnnounce {
            info_hash: InfoHash([0; 20]),
            peer_id: PeerId([0; 20]),
            downloaded: 0,
            left: 0,
            uploaded: 0,
            event: AnnounceEvent::Started,
            key: 0,
            num_want: -1,
            port: 1,
        },
    );
    let mut out = [0u8; MAX_REQUEST];
    let _ = udp.poll_transmit(Instant::ZERO, &mut out);
    for datagram in data.chunks(16.max(data.first().copied().unwrap_or(0) as usize)) {
        let _ = udp.handle_datagram(Instant::from_millis(1), datagram);
        let _ = udp.poll_transmit(Instant::from_millis(1), &mut out);
    }
});
