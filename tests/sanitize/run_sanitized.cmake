# run_sanitized.cmake - cmake -DSRC=<source> -DBIN=<build>/asan -DC_COMPILER=<cc>
#   [-DGENERATOR=<generator>] -P run_sanitized.cmake
# Configures a build with -fsanitize=address,undefined -fno-sanitize-recover=all (-O1 -g1:
# quick to compile, line numbers in reports), builds the unit test programs (all, or the
# |-separated TESTS) and the fuzz replay driver (-j2), and runs them one at a time. Fails on any test failure or sanitizer report.
if(NOT DEFINED WERROR)
  set(WERROR OFF)
endif()
foreach(v SRC BIN C_COMPILER)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_sanitized.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT GENERATOR)
  set(GENERATOR "Unix Makefiles")
endif()

function(step)
  string(TIMESTAMP t0 "%s")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  string(TIMESTAMP t1 "%s")
  math(EXPR dt "${t1} - ${t0}")
  message(STATUS "run_sanitized: ${dt} s: ${ARGN}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "run_sanitized: failed (${rc}): ${ARGN}")
  endif()
endfunction()

step(${CMAKE_COMMAND} -S ${SRC} -B ${BIN} -G ${GENERATOR}
  -DCMAKE_C_COMPILER=${C_COMPILER}
  -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g1"
  -DSAT_SANITIZE=address,undefined
  -DCMAKE_C_FLAGS=-fno-sanitize-recover=all
  -DSAT_SANITIZE_NESTED=ON -DSAT_WERROR=${WERROR}
  -DSAT_BUILD_EXAMPLES=OFF -DSAT_BUILD_BENCH=OFF -DSAT_ALLOW_MISSING_TEST_GROUPS=ON
  -DSAT_FUZZ_MUTATIONS=150)

# Only the programs the selected tests run: not the shared library, bindings or examples.
# TESTS (a ;-list of unit test names, given as a |-list) selects; default: all of them.
string(REPLACE "|" ";" units "${TESTS}")
if(NOT units)
  file(GLOB files ${SRC}/tests/unit/test_*.c)
  foreach(f ${files})
    get_filename_component(name ${f} NAME_WE)
    list(APPEND units ${name})
  endforeach()
endif()
string(REPLACE ";" "|" regex "${units}")
step(${CMAKE_COMMAND} --build ${BIN} -j2 --target sat_fuzz_replay ${units})

# One test at a time (tests/run.sh explains why). LeakSanitizer is on (ASan's default).
set(ENV{ASAN_OPTIONS} "detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1")
set(ENV{UBSAN_OPTIONS} "print_stacktrace=1:halt_on_error=1")
step(${CMAKE_CTEST_COMMAND} --test-dir ${BIN} --output-on-failure -j1 -R "^(${regex}|fuzz_replay_.*)$")
