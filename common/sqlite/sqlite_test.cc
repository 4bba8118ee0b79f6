#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "common/sqlite/database.h"
#include "common/sqlite/sqlite_status.h"
#include "common/sqlite/statement.h"
#include "common/sqlite/transaction.h"
#include "gtest/gtest.h"

namespace pocketmail::sqlite {
namespace {

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  std::string path = std::string(dir ? dir : "/tmp") + "/" + name;
  for (const char* suffix : {"", "-wal", "-shm"}) ::unlink((path + suffix).c_str());
  return path;
}

std::unique_ptr<Database> OpenOrDie(const std::string& path, DatabaseOptions options = {}) {
  auto db = Database::Open(path, options);
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? std::move(*db) : nullptr;
}

TEST(DatabaseTest, OpensInWalModeWithFullSyncAndForeignKeys) {
  auto db = OpenOrDie(TempPath("pragmas.db"));
  auto mode = db->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.ok());
  ASSERT_TRUE(*mode->Step());
  EXPECT_EQ(mode->ColumnText(0), "wal");
  EXPECT_EQ(*db->QueryInt64("PRAGMA synchronous"), 2);  // FULL
  EXPECT_EQ(*db->QueryInt64("PRAGMA foreign_keys"), 1);
}

TEST(DatabaseTest, BindsAndReadsEveryType) {
  auto db = OpenOrDie(":memory:");
  ASSERT_TRUE(db->Exec("CREATE TABLE t (i INTEGER, d REAL, s TEXT, b BLOB, n TEXT)").ok());
  auto insert = db->Prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)");
  ASSERT_TRUE(insert.ok());
  insert->BindInt64(1, int64_t{1} << 40)
      .BindDouble(2, 2.5)
      .BindText(3, std::string("caf\xc3\xa9 \0x", 8))
      .BindBlob(4, std::string("\0\1\2", 3))
      .BindNull(5);
  ASSERT_TRUE(insert->Run().ok());
  EXPECT_EQ(db->Changes(), 1);

  auto select = db->Prepare("SELECT i, d, s, b, n FROM t");
  ASSERT_TRUE(select.ok());
  ASSERT_TRUE(*select->Step());
  EXPECT_EQ(select->ColumnInt64(0), int64_t{1} << 40);
  EXPECT_DOUBLE_EQ(select->ColumnDouble(1), 2.5);
  EXPECT_EQ(select->ColumnText(2), std::string("caf\xc3\xa9 \0x", 8));
  EXPECT_EQ(select->ColumnBlob(3), std::string("\0\1\2", 3));
  EXPECT_TRUE(select->ColumnIsNull(4));
  EXPECT_EQ(select->ColumnText(4), "");
  EXPECT_FALSE(*select->Step());
}

TEST(DatabaseTest, EmptyTextBindsAsEmptyStringNotNull) {
  auto db = OpenOrDie(":memory:");
  auto stmt = db->Prepare("SELECT ?1 IS NULL, length(?1)");
  ASSERT_TRUE(stmt.ok());
  stmt->BindText(1, "");
  ASSERT_TRUE(*stmt->Step());
  EXPECT_EQ(stmt->ColumnInt64(0), 0);
  EXPECT_EQ(stmt->ColumnInt64(1), 0);
}

TEST(DatabaseTest, BindErrorIsReportedByStep) {
  auto db = OpenOrDie(":memory:");
  auto stmt = db->Prepare("SELECT ?1");
  ASSERT_TRUE(stmt.ok());
  stmt->BindInt64(7, 1);
  EXPECT_FALSE(stmt->Step().ok());
}

TEST(DatabaseTest, CachedStatementComesBackResetAndUnbound) {
  auto db = OpenOrDie(":memory:");
  ASSERT_TRUE(db->Exec("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2), (3)").ok());
  sqlite3_stmt* first_raw = nullptr;
  {
    auto stmt = db->Prepare("SELECT v FROM t WHERE v >= ?1 ORDER BY v");
    ASSERT_TRUE(stmt.ok());
    stmt->BindInt64(1, 2);
    ASSERT_TRUE(*stmt->Step());  // left half-stepped on purpose
    EXPECT_EQ(stmt->ColumnInt64(0), 2);
    first_raw = sqlite3_next_stmt(db->raw(), nullptr);
  }
  auto again = db->Prepare("SELECT v FROM t WHERE v >= ?1 ORDER BY v");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(sqlite3_next_stmt(db->raw(), nullptr), first_raw);  // reused, not recompiled
  // Bindings were cleared: NULL >= NULL matches nothing.
  EXPECT_FALSE(*again->Step());
}

TEST(DatabaseTest, PrepareErrorIsInternalWithSqlInMessage) {
  auto db = OpenOrDie(":memory:");
  auto stmt = db->Prepare("SELEC nonsense");
  ASSERT_FALSE(stmt.ok());
  EXPECT_NE(stmt.status().message().find("SELEC nonsense"), std::string::npos);
}

TEST(DatabaseTest, UserVersionRoundTrips) {
  auto db = OpenOrDie(":memory:");
  EXPECT_EQ(*db->UserVersion(), 0);
  ASSERT_TRUE(db->SetUserVersion(7).ok());
  EXPECT_EQ(*db->UserVersion(), 7);
}

TEST(DatabaseTest, QueryInt64WithoutRowIsNotFound) {
  auto db = OpenOrDie(":memory:");
  ASSERT_TRUE(db->Exec("CREATE TABLE t (v INTEGER)").ok());
  EXPECT_EQ(db->QueryInt64("SELECT v FROM t").status().code(), absl::StatusCode::kNotFound);
}

TEST(DatabaseTest, OpeningGarbageIsDataLoss) {
  std::string path = TempPath("garbage.db");
  std::ofstream(path) << std::string(4096, 'x');
  auto db = Database::Open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kDataLoss) << db.status();
}

TEST(DatabaseTest, OpeningMissingFileWithoutCreateFails) {
  DatabaseOptions options;
  options.create_if_missing = false;
  auto db = Database::Open(TempPath("missing.db"), options);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition) << db.status();
}

TEST(DatabaseTest, ReadOnlyConnectionRefusesWrites) {
  std::string path = TempPath("ro.db");
  {
    auto db = OpenOrDie(path);
    ASSERT_TRUE(db->Exec("CREATE TABLE t (v INTEGER)").ok());
  }
  DatabaseOptions options;
  options.read_only = true;
  auto db = OpenOrDie(path, options);
  absl::Status st = db->Exec("INSERT INTO t VALUES (1)");
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied) << st;
}

TEST(ConstraintTest, UniqueViolationIsAlreadyExists) {
  auto db = OpenOrDie(":memory:");
  ASSERT_TRUE(db->Exec("CREATE TABLE t (k TEXT PRIMARY KEY)").ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES ('a')").ok());
  auto stmt = db->Prepare("INSERT INTO t VALUES ('a')");
  ASSERT_TRUE(stmt.ok());
  EXPECT_EQ(stmt->Run().code(), absl::StatusCode::kAlreadyExists);
}

TEST(ConstraintTest, CheckAndForeignKeyViolationsAreFailedPrecondition) {
  auto db = OpenOrDie(":memory:");
  ASSERT_TRUE(db->Exec("CREATE TABLE p (id INTEGER PRIMARY KEY);"
                       "CREATE TABLE c (pid INTEGER REFERENCES p(id), v INTEGER CHECK (v > 0))")
                  .ok());
  EXPECT_EQ(db->Exec("INSERT INTO c VALUES (NULL, 0)").code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(db->Exec("INSERT INTO c VALUES (42, 1)").code(), absl::StatusCode::kFailedPrecondition);
}

TEST(StatusMappingTest, MapsTheCodesCallersBranchOn) {
  EXPECT_EQ(CodeForSqliteResult(SQLITE_BUSY), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeForSqliteResult(SQLITE_BUSY_SNAPSHOT), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeForSqliteResult(SQLITE_LOCKED), absl::StatusCode::kUnavailable);
  EXPECT_EQ(CodeForSqliteResult(SQLITE_CORRUPT), absl::StatusCode::kDataLoss);
  EXPECT_EQ(CodeForSqliteResult(SQLITE_NOTADB), absl::StatusCode::kDataLoss);
  EXPECT_EQ(CodeForSqliteResult(SQLITE_FULL), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(CodeForSqliteResult(SQLITE_CONSTRAINT_UNIQUE), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(CodeForSqliteResult(SQLITE_CONSTRAINT_NOTNULL), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(CodeForSqliteResult(SQLITE_OK), absl::StatusCode::kOk);
}

TEST(TransactionTest, CommitMakesWritesVisibleToAnotherConnection) {
  std::string path = TempPath("commit.db");
  auto writer = OpenOrDie(path);
  ASSERT_TRUE(writer->Exec("CREATE TABLE t (v INTEGER)").ok());
  {
    auto tx = Transaction::Begin(*writer);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(writer->Exec("INSERT INTO t VALUES (1)").ok());
    ASSERT_TRUE(tx->Commit().ok());
    EXPECT_FALSE(tx->active());
  }
  auto reader = OpenOrDie(path);
  EXPECT_EQ(*reader->QueryInt64("SELECT count(*) FROM t"), 1);
}

TEST(TransactionTest, DestructionWithoutCommitRollsBack) {
  auto db = OpenOrDie(":memory:");
  ASSERT_TRUE(db->Exec("CREATE TABLE t (v INTEGER)").ok());
  {
    auto tx = Transaction::Begin(*db);
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (1)").ok());
  }
  EXPECT_FALSE(db->InTransaction());
  EXPECT_EQ(*db->QueryInt64("SELECT count(*) FROM t"), 0);
}

TEST(TransactionTest, ExplicitRollbackDiscardsAndFinishes) {
  auto db = OpenOrDie(":memory:");
  ASSERT_TRUE(db->Exec("CREATE TABLE t (v INTEGER)").ok());
  auto tx = Transaction::Begin(*db);
  ASSERT_TRUE(tx.ok());
  ASSERT_TRUE(db->Exec("INSERT INTO t VALUES (1)").ok());
  ASSERT_TRUE(tx->Rollback().ok());
  EXPECT_EQ(tx->Commit().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(*db->QueryInt64("SELECT count(*) FROM t"), 0);
}

TEST(TransactionTest, SecondWriterGetsUnavailableAfterBusyTimeout) {
  std::string path = TempPath("busy.db");
  auto first = OpenOrDie(path);
  ASSERT_TRUE(first->Exec("CREATE TABLE t (v INTEGER)").ok());
  DatabaseOptions quick;
  quick.busy_timeout_ms = 50;
  auto second = OpenOrDie(path, quick);
  auto holding = Transaction::Begin(*first);
  ASSERT_TRUE(holding.ok());
  auto blocked = Transaction::Begin(*second);
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kUnavailable) << blocked.status();
}

}  // namespace
}  // namespace pocketmail::sqlite
