-- wrk -s post_json.lua: POST the JSON body in $WRK_BODY_FILE (default body.json) to the URL's path.
local path = os.getenv("WRK_BODY_FILE") or "body.json"
local f = assert(io.open(path, "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
