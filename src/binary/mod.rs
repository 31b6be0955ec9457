//! TEMPORARY stand-in (replaced by the wip-unwind branch).
use crate::model::Mapping;
pub trait FileOpener {
    fn open(&self, mapping: &Mapping) -> std::io::Result<std::fs::File>;
}
pub struct LiveOpener {
    pub pid: i32,
}
impl FileOpener for LiveOpener {
    fn open(&self, mapping: &Mapping) -> std::io::Result<std::fs::File> {
        std::fs::File::open(format!(
            "/proc/{}/map_files/{:x}-{:x}",
            self.pid, mapping.start, mapping.end
        ))
    }
}
#[derive(Default)]
pub struct BinaryCache;
impl BinaryCache {
    pub fn new() -> Self {
        BinaryCache
    }
}
