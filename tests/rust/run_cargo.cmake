# run_cargo.cmake - for the examples/rust workspace against the libsat staged in STAGE:
# `cargo build --offline` (the install command of the README), `cargo test --offline` (unit,
# integration, doc and compile-fail doc tests; examples are built), then the example.
# -DCARGO -DPKG_CONFIG -DCRATE_DIR -DSTAGE -DTARGET_DIR
file(GLOB_RECURSE _pc LIST_DIRECTORIES false "${STAGE}/libsat.pc")
if(NOT _pc)
  message(FATAL_ERROR "no libsat.pc under ${STAGE}: is the install staged (install_stage)?")
endif()
list(GET _pc 0 _pc)
get_filename_component(_pcdir "${_pc}" DIRECTORY)
set(ENV{PKG_CONFIG_PATH} "${_pcdir}")
execute_process(COMMAND ${PKG_CONFIG} --variable=libdir libsat
                OUTPUT_VARIABLE _libdir OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0 OR NOT EXISTS "${_libdir}")
  message(FATAL_ERROR "pkg-config --variable=libdir libsat gave '${_libdir}' (from ${_pc})")
endif()
if(DEFINED ENV{LD_LIBRARY_PATH} AND NOT "$ENV{LD_LIBRARY_PATH}" STREQUAL "")
  set(ENV{LD_LIBRARY_PATH} "${_libdir}:$ENV{LD_LIBRARY_PATH}")
else()
  set(ENV{LD_LIBRARY_PATH} "${_libdir}")
endif()
set(ENV{CARGO_TARGET_DIR} "${TARGET_DIR}")
set(ENV{CARGO_TERM_COLOR} "never")
message(STATUS "PKG_CONFIG_PATH=${_pcdir}  LD_LIBRARY_PATH=$ENV{LD_LIBRARY_PATH}")
execute_process(COMMAND ${CARGO} build --offline -j 2
                WORKING_DIRECTORY ${CRATE_DIR} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "cargo build failed (${_rc})")
endif()
execute_process(COMMAND ${CARGO} test --offline -j 2
                WORKING_DIRECTORY ${CRATE_DIR} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "cargo test failed (${_rc})")
endif()
execute_process(COMMAND ${CARGO} run --offline -q --example train -- 5
                WORKING_DIRECTORY ${CRATE_DIR} RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "cargo run --example train failed (${_rc})")
endif()
