# SatWarnings.cmake - the warning set every libsat target builds with, and sanitizers.
option(SAT_WERROR "Treat warnings as errors" OFF)
set(SAT_SANITIZE "" CACHE STRING "Sanitizers to enable, e.g. address,undefined")

function(sat_enable_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wstrict-prototypes -Wmissing-prototypes)
  if(SAT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

if(SAT_SANITIZE)
  add_compile_options(-fsanitize=${SAT_SANITIZE} -fno-omit-frame-pointer)
  add_link_options(-fsanitize=${SAT_SANITIZE})
endif()
