-- Where the control plane reaches a server's HTTPS API when the server's own address is not to be
-- connected to (the Azure target, whose customers' networks overlap: a private endpoint and a NAT
-- port per server). Written by the worker from its target's routes. Null: the address and 8501.
ALTER TABLE "ClusterServer" ADD COLUMN "apiEndpoint" TEXT;
