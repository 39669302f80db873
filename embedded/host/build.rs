//! Embed the file to seed (`SEED_FILE`, `SEED_TRACKER`: see `enjambre_embedded::embed::from_env`).

fn main() {
    if let Err(e) = enjambre_embedded::embed::from_env() {
        panic!("embedding the seeded file: {e}");
    }
}
