# Runs sat-mpi-pgd (model MODEL, options EXTRA) with 1 rank x 128 (or FIRST_RANKS ranks, with
# FIRST_EXTRA options too), then 2 ranks x 64 comparing its model to the first within TOLERANCE.
# With EXPECT_DIFFERENT the comparison must fail (exit 1): local batch norm is another
# computation, so the tolerance means something.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(mpirun ${MPIEXEC} --allow-run-as-root --oversubscribe)
separate_arguments(EXTRA UNIX_COMMAND "${EXTRA}")
set(args --model ${MODEL} --steps 5 --batch 128 ${EXTRA})
if(NOT FIRST_RANKS)
  set(FIRST_RANKS 1)
endif()
execute_process(COMMAND ${mpirun} -np ${FIRST_RANKS} ${PROGRAM} ${WORK}/one.model ${args} ${FIRST_EXTRA}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpirun -np ${FIRST_RANKS} ${PROGRAM}: exit ${rc}")
endif()
execute_process(COMMAND ${mpirun} -np 2 ${PROGRAM} ${WORK}/two.model ${args}
                        --compare ${WORK}/one.model ${TOLERANCE} RESULT_VARIABLE rc)
if(EXPECT_DIFFERENT)
  if(NOT rc EQUAL 1)
    message(FATAL_ERROR "mpirun -np 2 ${PROGRAM} --compare: exit ${rc}, expected 1 (weights differ)")
  endif()
elseif(NOT rc EQUAL 0)
  message(FATAL_ERROR "mpirun -np 2 ${PROGRAM} --compare: exit ${rc} (weights differ or the run failed)")
endif()
