#include "common/smtp/body_encoder.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace pocketmail::smtp {
namespace {

std::string EncodeWhole(const std::string& in) {
  BodyEncoder e;
  std::string out;
  e.Encode(in, &out);
  e.Finish(&out);
  return out;
}

std::string EncodeInPieces(const std::string& in, const std::vector<size_t>& cuts) {
  BodyEncoder e;
  std::string out;
  size_t prev = 0;
  for (size_t cut : cuts) {
    e.Encode(absl::string_view(in).substr(prev, cut - prev), &out);
    prev = cut;
  }
  e.Encode(absl::string_view(in).substr(prev), &out);
  e.Finish(&out);
  return out;
}

// What a receiving server does (RFC 5321 §4.5.2): split at CRLF, stop at the
// lone ".", drop one leading '.' from every other line.
std::string Unstuff(const std::string& wire) {
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t end = wire.find("\r\n", pos);
    if (end == std::string::npos) return "<unterminated>";
    std::string line = wire.substr(pos, end - pos);
    pos = end + 2;
    if (line == ".") return pos == wire.size() ? out : "<data after end>";
    if (!line.empty() && line[0] == '.') line.erase(0, 1);
    out += line + "\r\n";
  }
}

TEST(BodyEncoderTest, KeepsCrlfText) {
  EXPECT_EQ(EncodeWhole("Subject: x\r\n\r\nhello\r\n"), "Subject: x\r\n\r\nhello\r\n.\r\n");
}

TEST(BodyEncoderTest, LoneLfBecomesCrlf) {
  EXPECT_EQ(EncodeWhole("a\nb\n"), "a\r\nb\r\n.\r\n");
  EXPECT_EQ(EncodeWhole("\n\n"), "\r\n\r\n.\r\n");
}

TEST(BodyEncoderTest, LoneCrBecomesCrlf) {
  EXPECT_EQ(EncodeWhole("a\rb\r"), "a\r\nb\r\n.\r\n");
  EXPECT_EQ(EncodeWhole("a\r\rb"), "a\r\n\r\nb\r\n.\r\n");
}

TEST(BodyEncoderTest, CrLfAfterCrIsTwoLineEndings) {
  EXPECT_EQ(EncodeWhole("a\r\r\nb\r\n"), "a\r\n\r\nb\r\n.\r\n");
}

TEST(BodyEncoderTest, AddsMissingFinalCrlf) {
  EXPECT_EQ(EncodeWhole("no newline at end"), "no newline at end\r\n.\r\n");
}

TEST(BodyEncoderTest, EmptyBodyIsJustTheTerminator) { EXPECT_EQ(EncodeWhole(""), ".\r\n"); }

TEST(BodyEncoderTest, StuffsLeadingDots) {
  EXPECT_EQ(EncodeWhole(".\r\n"), "..\r\n.\r\n");
  EXPECT_EQ(EncodeWhole("a\r\n.\r\nb\r\n"), "a\r\n..\r\nb\r\n.\r\n");
  EXPECT_EQ(EncodeWhole("..twice\n"), "...twice\r\n.\r\n");
  EXPECT_EQ(EncodeWhole(".start"), "..start\r\n.\r\n");
  EXPECT_EQ(EncodeWhole("mid.dle.\r\n"), "mid.dle.\r\n.\r\n");
  EXPECT_EQ(EncodeWhole("x\n.\n"), "x\r\n..\r\n.\r\n");
  EXPECT_EQ(EncodeWhole("x\r.\r"), "x\r\n..\r\n.\r\n");
}

TEST(BodyEncoderTest, TerminatorLookalikeInBodyCannotEndTheMessageEarly) {
  std::string in = "From: a@b.c\r\n\r\nbefore\r\n.\r\nMAIL FROM:<evil@x>\r\n";
  std::string wire = EncodeWhole(in);
  EXPECT_EQ(wire.find("\r\n.\r\n"), wire.size() - 5);
  EXPECT_EQ(Unstuff(wire), in);
}

TEST(BodyEncoderTest, KeepsBinaryBytes) {
  std::string in("a\0b\xff\xfe\r\n", 7);
  EXPECT_EQ(EncodeWhole(in), std::string("a\0b\xff\xfe\r\n.\r\n", 10));
}

TEST(BodyEncoderTest, CountsInputBytes) {
  BodyEncoder e;
  std::string out;
  e.Encode("ab\n", &out);
  e.Encode(".c", &out);
  EXPECT_EQ(e.input_bytes(), 5u);
}

// The tricky inputs: CR, LF and '.' at every possible chunk boundary.
const char* const kTricky[] = {
    "a\r\n.b\r\n",   "\r\n.\r\n",    ".\r\n.\r\n.",      "x\r\r\n.\n.\r.",
    "\r\r\n\n..\r",  "line\n.\n",    "..\r\n...\r\n",    "end with cr\r",
    "\n.\r\n.\n\r.", "a\rb\nc\r\nd", "\r\n\r\n\r\n\r\n", "",
};

TEST(BodyEncoderTest, OutputIsIndependentOfOneSplitPoint) {
  for (const char* raw : kTricky) {
    std::string in(raw);
    std::string whole = EncodeWhole(in);
    for (size_t cut = 0; cut <= in.size(); ++cut) {
      EXPECT_EQ(EncodeInPieces(in, {cut}), whole) << "input '" << in << "' cut at " << cut;
    }
  }
}

TEST(BodyEncoderTest, OutputIsIndependentOfTwoSplitPoints) {
  for (const char* raw : kTricky) {
    std::string in(raw);
    std::string whole = EncodeWhole(in);
    for (size_t a = 0; a <= in.size(); ++a) {
      for (size_t b = a; b <= in.size(); ++b) {
        EXPECT_EQ(EncodeInPieces(in, {a, b}), whole)
            << "input '" << in << "' cuts " << a << "," << b;
      }
    }
  }
}

TEST(BodyEncoderTest, ByteAtATimeMatchesWhole) {
  std::string in = "H: v\r\n\r\n.\n..\r.\r\n\rx\n\r\n.";
  std::vector<size_t> every;
  for (size_t i = 1; i < in.size(); ++i) every.push_back(i);
  EXPECT_EQ(EncodeInPieces(in, every), EncodeWhole(in));
}

TEST(BodyEncoderTest, ServerSideUnstuffingRestoresCrlfNormalizedInput) {
  EXPECT_EQ(Unstuff(EncodeWhole("a\n.\n..\nb")), "a\r\n.\r\n..\r\nb\r\n");
  EXPECT_EQ(Unstuff(EncodeWhole(".")), ".\r\n");
}

}  // namespace
}  // namespace pocketmail::smtp
