//! The store on real OPFS, in a dedicated worker of headless Chromium: what a reload meets.
//! A unit test, not an integration test: those link the `no_std` build of the crate next to
//! std (two panic handlers).

use enjambre_core::journal::Entry;
use enjambre_core::{Geometry, InfoHash};

use crate::file::File;
use crate::opfs::{root, OpfsFile};
use crate::store::{Files, Store};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_dedicated_worker);

async fn files(name: &str) -> Files<OpfsFile> {
    let dir = root().await.expect("OPFS in a Chromium worker");
    Files {
        data: OpfsFile::open(&dir, &format!("{name}.data")).await.unwrap(),
        state: OpfsFile::open(&dir, &format!("{name}.state"))
            .await
            .unwrap(),
        journal: OpfsFile::open(&dir, &format!("{name}.journal"))
            .await
            .unwrap(),
    }
}

#[wasm_bindgen_test]
async fn written_journaled_and_reopened_on_opfs_resumes_from_the_exact_byte() {
    let name = format!("test-{}", js_sys::Date::now() as u64);
    let ih = InfoHash([3; 20]);
    let g = Geometry::new(16384, 40_000).unwrap();
    let (mut store, opened) = Store::open(files(&name).await, ih, g, 7).unwrap();
    assert!(opened.resume.is_none());
    store.write(g.piece(0).unwrap(), 0, &[1; 16384]).unwrap();
    store.note(Entry::Verified(0));
    store.write(g.piece(1).unwrap(), 0, &[2; 5000]).unwrap();
    store.journal().unwrap();
    // The page reloads: the handles go, nothing else happens.
    drop(store);

    let (mut store, opened) = Store::open(files(&name).await, ih, g, 8).unwrap();
    let resume = opened.resume.expect("a state was saved at open");
    assert!(resume.have.get(0));
    assert_eq!(resume.partial[0].as_slice(), &[(0, 5000)]);
    let mut back = vec![0u8; 5001];
    store.read(g.piece(1).unwrap(), 0, &mut back).unwrap();
    assert_eq!(&back[..5000], &[2; 5000][..]);
    assert_eq!(back[5000], 0);
    assert_eq!(store.data().size().unwrap(), 40_000);
}
