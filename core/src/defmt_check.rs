//! Compile-time proof that what a shell logs on a board implements `defmt::Format`.
//!
//! Built only with the `defmt` feature; a type that loses its `Format` derive fails this build
//! (CI builds `--features defmt` for `thumbv7em-none-eabihf`).

const fn is_format<T: defmt::Format + ?Sized>() {}

const _: () = {
    is_format::<crate::session::Output<'static>>();
    is_format::<crate::session::Command>();
    is_format::<crate::session::Event>();
    is_format::<crate::session::CloseReason>();
    is_format::<crate::session::PeerMisbehaved>();
    is_format::<crate::session::StorageError>();
    is_format::<crate::session::SessionError>();
    is_format::<crate::session::Stats>();
    is_format::<crate::wire::WireError>();
    is_format::<crate::bencode::BencodeError>();
    is_format::<crate::metainfo::MetainfoError>();
    is_format::<crate::metainfo::WriteError>();
    is_format::<crate::tracker::TrackerError>();
    is_format::<crate::resume::ResumeError>();
    is_format::<crate::geometry::GeometryError>();
    is_format::<crate::bitfield::BitfieldError>();
    is_format::<crate::wire::MetadataError>();
    is_format::<crate::wire::PexError>();
    is_format::<crate::wire::PexFlags>();
    is_format::<crate::metadata::FetchError>();
    is_format::<crate::metadata::SizeError>();
    is_format::<crate::metadata::PieceFault>();
    is_format::<crate::BufferTooSmall>();
};
