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

  # flake.lock is not committed: `nix flake lock` writes it, the one step that needs the network
  # (docs/testing.md). After that, `nix build` and `nix develop` work from the lock.
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
        # What scripts/testenv starts (it builds kube-apiserver and the kubelet 1.20 from source
        # with go) and what the tests use beside them.
        testServers = with pkgs; [
          containerd runc etcd_3_5 distribution redis postgresql cni-plugins
          go rsync gnumake curl openssl xz python3 iproute2 procps
        ];
        # The Nickel evaluator guest, a wasm32-wasip2 component with its own lock file: built here as
        # its own derivation (its dependencies vendored from that lock), so the main package does
        # not run the nested cargo build that needs the network.
        evaluator = rustPlatform.buildRustPackage {
          pname = "spindle-evaluator";
          version = "0.1.0";
          src = ./schema/evaluator;
          cargoLock.lockFile = ./schema/evaluator/Cargo.lock;
          nativeBuildInputs = [ rust ];
          buildPhase = ''
            runHook preBuild
            cargo build --release --frozen --target wasm32-wasip2
            runHook postBuild
          '';
          installPhase = ''
            runHook preInstall
            mkdir -p $out
            cp target/wasm32-wasip2/release/spindle_evaluator.wasm $out/
            runHook postInstall
          '';
          doCheck = false;
        };
      in
      {
        devShells.default = pkgs.mkShell {
          inherit buildInputs;
          nativeBuildInputs = nativeBuildInputs ++ testServers;
        };

        packages.evaluator = evaluator;
        packages.default = rustPlatform.buildRustPackage {
          pname = "spindle";
          version = "0.1.0";
          src = ./.;
          cargoLock.lockFile = ./Cargo.lock;
          inherit buildInputs nativeBuildInputs;
          # config/build.rs takes the prebuilt guest instead of building it.
          SPINDLE_EVALUATOR_WASM = "${evaluator}/spindle_evaluator.wasm";
          cargoBuildFlags = [ "-p" "spindle" "-p" "containerd-shim-spindle" "-p" "spindle-node-installer" ];
          doCheck = false; # the tests need real servers: run scripts/test
        };
      });
}
