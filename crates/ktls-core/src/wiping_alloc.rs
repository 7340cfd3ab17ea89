//! A global allocator that wipes every block it frees. rustls drops record
//! encrypters, key schedules and secrets it extracted without zeroizing all
//! of them (its `Iv` has no destructor): once the kernel holds the keys,
//! freed heap blocks would still carry copies. The binding installs it, so
//! nothing of ours or rustls's outlives its allocation.

use std::alloc::{GlobalAlloc, Layout, System};

use zeroize::Zeroize;

/// The system allocator, wiping blocks before it frees them.
#[derive(Debug)]
pub struct WipingAllocator;

impl WipingAllocator {
    /// # Safety
    /// `ptr` must be a live block of `size` bytes.
    unsafe fn wipe(ptr: *mut u8, size: usize) {
        // SAFETY: the caller guarantees `ptr` is valid for `size` bytes; zeroize
        // writes volatilely, so the wipe is not elided before the free.
        unsafe { std::slice::from_raw_parts_mut(ptr, size) }.zeroize();
    }
}

// SAFETY: every method hands out or frees blocks of System's, with System's
// guarantees; the only change is the wipe before a block goes back.
unsafe impl GlobalAlloc for WipingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of `layout` (GlobalAlloc's contract).
        unsafe {
            Self::wipe(ptr, layout.size());
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A block realloc moved would be freed unwiped: move it here instead.
        // SAFETY: `new_size` is valid for `layout.align()` (GlobalAlloc's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a fresh block of `new_layout`; both blocks are live for the
        // bytes copied, and the old one is freed (wiped) exactly once.
        unsafe {
            let new = System.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_contents_through_realloc() {
        let allocator = WipingAllocator;
        let layout = Layout::from_size_align(16, 8).unwrap();
        // SAFETY: blocks of `layout` used within their sizes, freed once.
        unsafe {
            let ptr = allocator.alloc(layout);
            assert!(!ptr.is_null());
            for i in 0..16 {
                *ptr.add(i) = i as u8;
            }
            let grown = allocator.realloc(ptr, layout, 64);
            assert!(!grown.is_null());
            assert!((0..16).all(|i| *grown.add(i) == i as u8));
            allocator.dealloc(grown, Layout::from_size_align(64, 8).unwrap());
        }
    }
}
