//! The `velo` binary.

fn main() {
    println!("velo");
}
