//! Any bytes, in any read sizes: neither side of the MSE exchange panics, takes more than it
//! was given, or finishes without streams to hand over.
#![no_main]

use enjambre_core::mse::{Initiator, Methods, Responder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(split).max(1);
    let mut b = Responder::new([7; 20], u16::from(split) * 2, Methods::BOTH, split & 1 == 0);
    let mut a = Initiator::new([1; 20], [9; 20], u16::from(split), Methods::BOTH);
    for piece in rest.chunks(chunk) {
        let accepts_any = |_: &[u8; 20]| Some([1u8; 20]);
        if let Ok(n) = b.receive(piece, accepts_any) {
            assert!(n <= piece.len());
            assert_eq!(b.is_done(), b.established().is_some());
        }
        if let Ok(n) = a.receive(piece) {
            assert!(n <= piece.len());
            assert_eq!(a.is_done(), a.established().is_some());
        }
        let (ta, tb) = (a.transmit().len(), b.transmit().len());
        a.sent(ta);
        b.sent(tb);
    }
});
