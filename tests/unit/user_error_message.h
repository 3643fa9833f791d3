#pragma once
// The message of the UserError a call throws, for tests of refusals: EXPECT_NE(message_of([&]
// { ... }).find("what the message must name"), npos). "(no UserError)" when it throws none;
// any other exception propagates (and fails the test).
#include <functional>
#include <string>

#include "core/error.h"

namespace llmpi::testing {

inline std::string message_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const UserError& e) {
    return e.what();
  }
  return "(no UserError)";
}

}  // namespace llmpi::testing
