//! Embed the file to seed (`SEED_FILE`, `SEED_TRACKER`: see `enjambre_embedded::embed::from_env`)
//! and write `memory.x` for the chip: all of the flash for the program, or, with feature
//! `flash-image`, the first MiB for the program and the second for the image (`region.rs`
//! gives the firmware the same numbers).

use std::fs;
use std::path::PathBuf;

/// Where the flash image lives: H743 bank 2; F767 (single-bank) sectors 8 to 11.
const IMAGE_START: u32 = 0x0810_0000;
const IMAGE_LEN: u32 = 1024 * 1024;

fn main() {
    if let Err(e) = enjambre_embedded::embed::from_env() {
        panic!("embedding the seeded file: {e}");
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let f767 = std::env::var_os("CARGO_FEATURE_F767ZI").is_some();
    let image = std::env::var_os("CARGO_FEATURE_FLASH_IMAGE").is_some();
    // H743: 2 MiB in two banks, 512 KiB of AXI SRAM (the Ethernet DMA cannot reach DTCM).
    // F767: 2 MiB, 512 KiB of SRAM from 0x2000_0000 (DTCM, SRAM1, SRAM2).
    let ram = if f767 { 0x2000_0000u32 } else { 0x2400_0000 };
    let flash_kib = if image {
        (IMAGE_START - 0x0800_0000) / 1024
    } else {
        2048
    };
    let memory_x = format!(
        "MEMORY\n{{\n  FLASH : ORIGIN = 0x08000000, LENGTH = {flash_kib}K\n  RAM   : ORIGIN = {ram:#010x}, LENGTH = 512K\n}}\n\
         /* The flash image (feature flash-image), outside FLASH: */\n\
         _flash_image_start = {IMAGE_START:#010x};\n_flash_image_end = {:#010x};\n",
        IMAGE_START + IMAGE_LEN
    );
    fs::write(out.join("memory.x"), memory_x).expect("writing memory.x");
    fs::write(
        out.join("region.rs"),
        format!(
            "/// Start of the flash image's region (see build.rs).\npub const IMAGE_START: usize = {IMAGE_START:#x};\n\
             /// Bytes in the region.\npub const IMAGE_LEN: usize = {IMAGE_LEN:#x};\n"
        ),
    )
    .expect("writing region.rs");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=build.rs");
}
