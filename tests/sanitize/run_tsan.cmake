# run_tsan.cmake - cmake -DSRC=<source> -DBIN=<build>/tsan [-DGENERATOR=<generator>]
#   -DTESTS=<a|b> -P run_tsan.cmake
# Configures a build with clang -fsanitize=thread (-O1 -g1), builds the unit test programs
# named in TESTS (-j2) and runs them one at a time. Fails on any test failure or data race
# report (halt_on_error: the first report fails the test).
foreach(v SRC BIN TESTS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_tsan.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT GENERATOR)
  set(GENERATOR "Unix Makefiles")
endif()
find_program(CLANG NAMES clang clang-14)
if(NOT CLANG)
  message(FATAL_ERROR "run_tsan: clang is not installed (cmake/install-deps.sh installs it)")
endif()

function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "run_tsan: failed (${rc}): ${ARGN}")
  endif()
endfunction()

step(${CMAKE_COMMAND} -S ${SRC} -B ${BIN} -G ${GENERATOR}
  -DCMAKE_C_COMPILER=${CLANG}
  -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g1"
  -DSAT_SANITIZE=thread
  # clang warns about other things than the compiler whose warnings the main build makes
  # errors; this build looks for races, so its warnings stay warnings.
  -DSAT_SANITIZE_NESTED=ON -DSAT_WERROR=OFF
  -DSAT_BUILD_EXAMPLES=OFF -DSAT_BUILD_BENCH=OFF -DSAT_ALLOW_MISSING_TEST_GROUPS=ON)

string(REPLACE "|" ";" units "${TESTS}")
step(${CMAKE_COMMAND} --build ${BIN} -j2 --target ${units})
set(ENV{TSAN_OPTIONS} "halt_on_error=1:second_deadlock_stack=1")
step(${CMAKE_CTEST_COMMAND} --test-dir ${BIN} --output-on-failure -j1 -R "^(${TESTS})$")
