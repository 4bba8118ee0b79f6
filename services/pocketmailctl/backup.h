// pocketmailctl backup / restore: consistent snapshots of the ledger and of
// Maddy's databases (imapsql.db: the mailboxes; credentials.db: passwords),
// taken with SQLite's online backup API while the services keep running.
//
// Order is what makes a restore safe: Maddy's databases are copied first and
// the ledger last, so every message in the restored mailboxes was delivered
// before the ledger snapshot, and the restored ledger records it as delivered.
// A restored pair can therefore never re-inject mail that is already in the
// mailbox. (Deliveries between the two snapshots are the other way round: in
// the ledger but not in the restored mailbox. STAMP lists the window so they
// can be replayed from processed/ while it still has them.)
//
// DIR/STAMP (KEY=VALUE) records when each snapshot was taken, the ledger's
// last delivery seq, and the sha256 of every file; restore refuses a backup
// whose files don't match it, and refuses to restore only half of the pair
// unless told to.
#ifndef POCKETMAIL_SERVICES_POCKETMAILCTL_BACKUP_H_
#define POCKETMAIL_SERVICES_POCKETMAILCTL_BACKUP_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pocketmail::ctl {

struct BackupPaths {
  std::string ledger_db;  // e.g. ~/.local/state/pocketmail/ledger.db
  std::string maddy_dir;  // holds imapsql.db and credentials.db ("" = skip Maddy)
};

struct BackupReport {
  std::vector<std::string> files;  // names written into the backup dir
  int64_t maddy_snapshot_ms = 0;
  int64_t ledger_snapshot_ms = 0;
  int64_t ledger_last_seq = 0;
  // Ledger rows delivered between the two snapshots (see the class comment).
  int64_t delivered_between_snapshots = 0;
};

// Copies one live SQLite database to `dest` with the online backup API.
absl::Status SnapshotSqlite(const std::string& source, const std::string& dest);

absl::StatusOr<BackupReport> Backup(const BackupPaths& paths, const std::string& dir);

// Restores what `dir` holds into `paths`. REQUIRES the services (and Maddy) to
// be stopped. `allow_partial` permits a backup without Maddy's databases.
absl::StatusOr<BackupReport> Restore(const std::string& dir, const BackupPaths& paths,
                                     bool allow_partial);

}  // namespace pocketmail::ctl

#endif  // POCKETMAIL_SERVICES_POCKETMAILCTL_BACKUP_H_
