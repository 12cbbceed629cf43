/**
 * Filesystems whose every change the local kernel makes itself, so inotify reports it: what a
 * cache validated by inotify may trust. Network and FUSE filesystems change behind the kernel's
 * back (another client, the daemon), and inotify is silent about that.
 *
 * @module
 */

/** f_type magic numbers (linux/magic.h) of local filesystems. */
const LOCAL_FS_MAGIC: ReadonlySet<number> = new Set([
  0xEF53, // ext2, ext3, ext4
  0x58465342, // xfs
  0x9123683E, // btrfs
  0x01021994, // tmpfs
  0x858458F6, // ramfs
  0x794C7630, // overlayfs
  0x73717368, // squashfs
  0xE0F5E1E2, // erofs
  0xF2F52010, // f2fs
]);

/** True when a statfs f_type names a filesystem only this kernel changes. */
export function isLocalFilesystem(magic: number): boolean {
  return LOCAL_FS_MAGIC.has(magic >>> 0);
}
