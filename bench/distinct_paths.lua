-- wrk script: every request a path never asked before (/tf/d1/x, /tf/d2/x, ...),
-- for the try_files scenarios: no cache can have seen it.
counter = 0
request = function()
    counter = counter + 1
    return wrk.format("GET", "/tf/d" .. counter .. "/x")
end
