{
  description = "spindle: GitOps for WebAssembly on Kubernetes";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, rust-overlay, flake-utils }:
    flake-utils.lib.eachDefaultSystem (system:
      let
        pkgs = import nixpkgs {
          inherit system;
          overlays = [ (import rust-overlay) ];
        };
        # The same toolchain as rust-toolchain.toml: Rust 1.95 with the wasm32-wasip2 target.
        rust = pkgs.rust-bin.fromRustupToolchainFile ./rust-toolchain.toml;
        rustPlatform = pkgs.makeRustPlatform { cargo = rust; rustc = rust; };
        # What scripts/test installs with apt on Debian.
        buildInputs = with pkgs; [ openssl libseccomp ];
        nativeBuildInputs = with pkgs; [ rust pkg-config protobuf git ];
        testServers = with pkgs; [ containerd runc etcd_3_5 distribution go rsync curl openssl python3 ];
      in
      {
        devShells.default = pkgs.mkShell {
          inherit buildInputs;
          nativeBuildInputs = nativeBuildInputs ++ testServers;
        };

        packages.default = rustPlatform.buildRustPackage {
          pname = "spindle";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          inherit buildInputs nativeBuildInputs;
          doCheck = false; # the tests need real servers: run scripts/test
        };
      });
}
