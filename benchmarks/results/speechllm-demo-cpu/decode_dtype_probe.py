import time, torch
torch.set_num_threads(2)
from soritune.speechllm.model import SpeechLLM
from soritune.speechllm.decoding import inference_copy
m=SpeechLLM.load('/tmp/sllm3/demo_run/out/run/stage2/model')
def bench(llm, name, dtype, n=10):
    torch.manual_seed(0)
    emb=(torch.randn(8,150,640)*0.05).to(dtype); mask=torch.ones(8,150,dtype=torch.long)
    kw=dict(inputs_embeds=emb, attention_mask=mask, do_sample=False, pad_token_id=0)
    with torch.no_grad():
        llm.generate(**kw, max_new_tokens=2, min_new_tokens=2)
        w,c=time.perf_counter(),time.process_time(); llm.generate(**kw, max_new_tokens=1, min_new_tokens=1); w1,c1=time.perf_counter()-w,time.process_time()-c
        w,c=time.perf_counter(),time.process_time(); llm.generate(**kw, max_new_tokens=n+1, min_new_tokens=n+1); w2,c2=time.perf_counter()-w,time.process_time()-c
    print(f'{name}: prefill wall {w1:.2f}s cpu {c1:.2f}s | decode step wall {(w2-w1)/n*1000:.0f} ms cpu {(c2-c1)/n*1000:.0f} ms', flush=True)
bench(m.llm,'fp32 peft',torch.float32)
t=time.process_time(); c=inference_copy(m.llm,'float32'); print('copy cpu',time.process_time()-t)
bench(c,'fp32 merged',torch.float32); del c
t=time.process_time(); c=inference_copy(m.llm,'bfloat16'); print('copy cpu',time.process_time()-t)
bench(c,'bf16 merged',torch.bfloat16)
bench(m.llm,'fp32 peft again',torch.float32)
