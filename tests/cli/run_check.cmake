# run_check.cmake - runs one command and checks its exit code, its output and the files it
# should have written. ctest's own PASS_REGULAR_EXPRESSION ignores the exit code, and the
# exit codes of sat-cli are part of its interface, so the tests check both here.
#   -DCMD="prog|arg1|arg2"     the command, arguments separated by |
#   -DEXPECT_RC=N              required exit code (default 0)
#   -DEXPECT="regex|regex"     regular expressions the combined stdout+stderr must match
#   -DEXPECT_FILES="a|b"       files that must exist afterwards
#   -DREMOVE_FILES="a|b"       files removed before the run
if(NOT DEFINED EXPECT_RC)
  set(EXPECT_RC 0)
endif()
string(REPLACE "|" ";" cmd "${CMD}")
if(DEFINED REMOVE_FILES)
  string(REPLACE "|" ";" rm "${REMOVE_FILES}")
  file(REMOVE_RECURSE ${rm})
endif()
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("$ ${cmd}\n${out}${err}exit code: ${rc}")
if(NOT "${rc}" STREQUAL "${EXPECT_RC}")
  message(FATAL_ERROR "exit code ${rc}, expected ${EXPECT_RC}")
endif()
if(DEFINED EXPECT)
  string(REPLACE "|" ";" res "${EXPECT}")
  foreach(re ${res})
    if(NOT "${out}${err}" MATCHES "${re}")
      message(FATAL_ERROR "output does not match '${re}'")
    endif()
  endforeach()
endif()
if(DEFINED EXPECT_FILES)
  string(REPLACE "|" ";" files "${EXPECT_FILES}")
  foreach(f ${files})
    if(NOT EXISTS "${f}")
      message(FATAL_ERROR "expected file ${f} was not written")
    endif()
  endforeach()
endif()
