# The failure and resume tests of sat-mpi-pgd on the tiny IDX set in DATA (512 examples,
# global batch 64: 8 steps per epoch, 2 epochs, a model with synchronised batch norm).
#   MODE kill:   rank 1 is killed at step 11; mpirun must exit non-zero naming the killed
#                rank, and the last checkpoint (step 9) must resume, with 2 ranks, to the
#                uninterrupted run's weights bit for bit.
#   MODE resume: a run stopped after step 5 (mid-epoch) resumes with 2 ranks bit for bit and
#                with 1 rank within TOLERANCE; a run stopped at the end of epoch 1 resumes
#                with 1 rank within TOLERANCE.
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
set(mpirun ${MPIEXEC} --allow-run-as-root --oversubscribe)
set(args --data ${DATA} --model tiny-bn --batch 64 --epochs 2)

function(run np expect_ok)
  execute_process(COMMAND ${mpirun} -np ${np} ${PROGRAM} ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out
                  ERROR_VARIABLE err)
  set(rc ${rc} PARENT_SCOPE)
  set(out "${out}${err}" PARENT_SCOPE)
  if(expect_ok AND NOT rc EQUAL 0)
    message(FATAL_ERROR "mpirun -np ${np} ${PROGRAM} ${ARGN}: exit ${rc}\n${out}${err}")
  endif()
endfunction()

run(2 1 ${WORK}/full.model ${args})
if(MODE STREQUAL "kill")
  run(2 0 ${WORK}/killed.model ${args} --checkpoint ${WORK}/run.ckpt --checkpoint-every 3
      --kill-rank 1 --kill-at 11)
  if(rc EQUAL 0)
    message(FATAL_ERROR "a killed rank left mpirun's exit code 0:\n${out}")
  endif()
  if(NOT out MATCHES "rank 1 .*signal 9")
    message(FATAL_ERROR "mpirun did not say which rank died:\n${out}")
  endif()
  if(EXISTS ${WORK}/killed.model)
    message(FATAL_ERROR "the killed run wrote its final model")
  endif()
  run(2 1 ${WORK}/resumed.model ${args} --checkpoint ${WORK}/run.ckpt --resume --compare ${WORK}/full.model 0)
  if(NOT out MATCHES "epoch 2, 64 examples done")
    message(FATAL_ERROR "the resume did not start from the last checkpoint (step 9):\n${out}")
  endif()
else()
  run(2 1 ${WORK}/part.model ${args} --steps 5 --checkpoint ${WORK}/mid.ckpt)
  file(COPY ${WORK}/mid.ckpt DESTINATION ${WORK}/copy)
  run(2 1 ${WORK}/same.model ${args} --checkpoint ${WORK}/mid.ckpt --resume --compare ${WORK}/full.model 0)
  run(1 1 ${WORK}/other.model ${args} --checkpoint ${WORK}/copy/mid.ckpt --resume
      --compare ${WORK}/full.model ${TOLERANCE})
  run(2 1 ${WORK}/epoch1.model ${args} --epochs 1 --checkpoint ${WORK}/epoch.ckpt)
  run(1 1 ${WORK}/boundary.model ${args} --checkpoint ${WORK}/epoch.ckpt --resume
      --compare ${WORK}/full.model ${TOLERANCE})
endif()
