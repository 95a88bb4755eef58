//! The generated protobuf and gRPC code for `proto/verdict/v1/reward.proto` (package `verdict.v1`).
//!
//! `build.rs` compiles the proto with protox, so no `protoc` is needed on the machine.
//! Conversions to and from the library types live in [`crate::convert`].
#![allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]

tonic::include_proto!("verdict.v1");

/// The encoded `FileDescriptorSet` of `reward.proto`, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("verdict_descriptor");

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn file_descriptor_set_is_valid() {
        let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let file = fds
            .file
            .iter()
            .find(|f| f.package() == "verdict.v1")
            .expect("reward.proto is in the set");
        let service = &file.service[0];
        assert_eq!(service.name(), "RewardService");
        let methods: Vec<_> = service.method.iter().map(|m| m.name()).collect();
        assert_eq!(
            methods,
            ["Score", "ScoreBatch", "ScoreStream", "ListVerifiers"]
        );
    }
}
