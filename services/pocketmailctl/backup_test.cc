#include "services/pocketmailctl/backup.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pocketmail::ctl {
namespace {

void Exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_close(db);
}

int64_t Count(const std::string& path, const std::string& table) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* st = nullptr;
  sqlite3_prepare_v2(db, ("SELECT COUNT(*) FROM " + table).c_str(), -1, &st, nullptr);
  int64_t n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -1;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = std::string(std::getenv("TEST_TMPDIR")) + "/" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_ + "/state");
    std::filesystem::create_directories(base_ + "/maddy");
    paths_ = {base_ + "/state/ledger.db", base_ + "/maddy"};
    Exec(paths_.ledger_db,
         "PRAGMA journal_mode=WAL; CREATE TABLE ledger_meta(name TEXT PRIMARY KEY, value INTEGER);"
         "INSERT INTO ledger_meta VALUES('last_seq', 2);"
         "CREATE TABLE messages(key TEXT PRIMARY KEY, delivered_ms INTEGER);"
         "INSERT INTO messages VALUES('a', 1), ('b', 2);");
    Exec(paths_.maddy_dir + "/imapsql.db",
         "PRAGMA journal_mode=WAL; CREATE TABLE msgs(id INTEGER); INSERT INTO msgs VALUES(1),(2);");
    Exec(paths_.maddy_dir + "/credentials.db",
         "CREATE TABLE passwords(key TEXT, value TEXT); INSERT INTO passwords "
         "VALUES('u','bcrypt:x');");
  }
  std::string base_;
  BackupPaths paths_;
};

TEST_F(BackupTest, BackupAndRestoreRoundTripThePair) {
  auto b = Backup(paths_, base_ + "/backup");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->ledger_last_seq, 2);
  EXPECT_LE(b->maddy_snapshot_ms, b->ledger_snapshot_ms);  // Maddy first, the ledger last
  struct stat st;
  ASSERT_EQ(stat((base_ + "/backup/credentials.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(stat((base_ + "/backup").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700);

  Exec(paths_.ledger_db, "INSERT INTO messages VALUES('c', 3);");
  Exec(paths_.maddy_dir + "/imapsql.db", "DELETE FROM msgs;");
  auto r = Restore(base_ + "/backup", paths_, /*allow_partial=*/false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Count(paths_.ledger_db, "messages"), 2);
  EXPECT_EQ(Count(paths_.maddy_dir + "/imapsql.db", "msgs"), 2);
}

TEST_F(BackupTest, ATamperedBackupIsRefusedBeforeAnythingIsTouched) {
  ASSERT_TRUE(Backup(paths_, base_ + "/backup").ok());
  Exec(base_ + "/backup/imapsql.db", "INSERT INTO msgs VALUES(99);");
  Exec(paths_.ledger_db, "INSERT INTO messages VALUES('c', 3);");
  auto r = Restore(base_ + "/backup", paths_, false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(Count(paths_.ledger_db, "messages"), 3);  // untouched
}

TEST_F(BackupTest, ALedgerOnlyBackupNeedsExplicitConsentToRestore) {
  BackupPaths ledger_only{paths_.ledger_db, ""};
  ASSERT_TRUE(Backup(ledger_only, base_ + "/backup").ok());
  EXPECT_EQ(Restore(base_ + "/backup", paths_, false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Restore(base_ + "/backup", paths_, true).ok());
}

TEST_F(BackupTest, MissingMaddyDatabaseIsAnError) {
  std::filesystem::remove(paths_.maddy_dir + "/credentials.db");
  EXPECT_EQ(Backup(paths_, base_ + "/backup").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace pocketmail::ctl
