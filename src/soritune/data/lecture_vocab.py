"""Vocabulary and sentence templates for the synthetic lecture corpus (data only; the engine that
fills them is `soritune.data.lecture_text`).

Each vocabulary pool is split three ways: `shared` items may appear in every split, `train` items
only in train/dev, `test` items only in test and the everyday check set. Templates are split the
same way (TRAIN_* vs TEST_*), so a model cannot pass the test split by memorising sentences.

Template syntax: literal Hangul is the same in both forms; `{slot}` or `{slot:ARG}` is filled by the
engine (ARG is a particle key such as 을, 이, 은, 과, 으로, 이라고 ... chosen by the spoken form, or
the counter for the counting slots `cnt`, `sn`, `bign`); `[written|spoken]` is a fixed pair.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pool:
    """Items usable in every split (`shared`), only in train/dev (`train`), only held-out (`test`)."""

    shared: tuple = ()
    train: tuple = ()
    test: tuple = ()

    def items(self, held_out: bool) -> tuple:
        return self.shared + (self.test if held_out else self.train)


# ---- symbols -------------------------------------------------------------------------------------
VARS = Pool(train=("x", "x", "x", "t", "y", "z", "s", "a", "n", "r"), test=("u", "v", "w", "p", "q", "k"))
FUNCS = Pool(train=("f", "f", "g"), test=("h",))
MATRICES = Pool(train=("A", "B", "M"), test=("P", "Q", "H"))
VECTORS = Pool(train=("a", "b", "x"), test=("u", "v", "w"))
RANDOM_VARS = Pool(train=("X", "Y", "Z"), test=("U", "V", "W"))
GREEK_LETTERS = Pool(train=("α", "β", "γ", "δ", "θ", "λ", "μ", "σ", "ε"), test=("ω", "τ", "η", "κ", "ψ", "χ", "ξ"))

# ---- terms: (written, spoken) ---------------------------------------------------------------------
TERMS = Pool(
    train=(
        ("gradient", "그래디언트"), ("matrix", "매트릭스"), ("vector", "벡터"), ("eigenvalue", "아이겐밸류"),
        ("loss", "로스"), ("batch", "배치"), ("epoch", "에포크"), ("overfitting", "오버피팅"),
        ("regression", "리그레션"), ("softmax", "소프트맥스"), ("ReLU", "렐루"), ("sigmoid", "시그모이드"),
        ("convolution", "컨볼루션"), ("kernel", "커널"), ("tensor", "텐서"), ("dropout", "드롭아웃"),
        ("bias", "바이어스"), ("variance", "베리언스"), ("sampling", "샘플링"), ("filter", "필터"),
        ("embedding", "임베딩"), ("attention", "어텐션"), ("transformer", "트랜스포머"), ("optimizer", "옵티마이저"),
        ("feedback", "피드백"), ("threshold", "스레숄드"), ("pipeline", "파이프라인"), ("cache", "캐시"),
        ("thread", "스레드"), ("compiler", "컴파일러"), ("Python", "파이썬"), ("pointer", "포인터"),
        ("hash table", "해시 테이블"), ("recursion", "리커전"),
    ),
    test=(
        ("determinant", "디터미넌트"), ("entropy", "엔트로피"), ("momentum", "모멘텀"),
        ("regularization", "레귤러라이제이션"), ("normalization", "노멀라이제이션"), ("encoder", "인코더"),
        ("decoder", "디코더"), ("latency", "레이턴시"), ("throughput", "스루풋"), ("quantization", "퀀타이제이션"),
        ("scheduler", "스케줄러"), ("bandwidth", "밴드위스"), ("residual", "레지듀얼"), ("interrupt", "인터럽트"),
    ),
)
# Acronyms; spoken forms not given are spelled letter by letter (GPU -> 지피유).
ACRONYMS = Pool(
    train=("GPU", "CPU", "API", "FFT", "CNN", "RNN", "SVD", "PCA", "ODE", "DC", "AC", "LED", "USB", "SSD",
           "MSE", "SGD", "HTTP", "SQL", "RAM", "OS", "PID", "AI"),
    test=("LSTM", "MLP", "PDE", "ADC", "DAC", "PWM", "FPGA", "TCP", "DNS", "GAN", "IoT", "RMS", "CUDA", "NPU"),
)
ACRONYM_SPOKEN = {"RAM": "램", "GAN": "갠", "CUDA": "쿠다"}
METHODS = Pool(
    train=(
        ("Taylor 전개", "테일러 전개"), ("Fourier 변환", "푸리에 변환"), ("Newton 방법", "뉴턴 방법"),
        ("Gauss 소거법", "가우스 소거법"), ("Euler 공식", "오일러 공식"), ("Bayes 정리", "베이즈 정리"),
        ("Markov 체인", "마르코프 체인"), ("Poisson 분포", "푸아송 분포"), ("Kirchhoff 법칙", "키르히호프 법칙"),
        ("Nyquist 정리", "나이퀴스트 정리"), ("Dijkstra 알고리즘", "다익스트라 알고리즘"),
        ("Maxwell 방정식", "맥스웰 방정식"), ("Huffman 코딩", "허프만 코딩"), ("Lagrange 승수법", "라그랑주 승수법"),
    ),
    test=(
        ("Laplace 변환", "라플라스 변환"), ("Runge-Kutta 방법", "룽게 쿠타 방법"), ("Kalman 필터", "칼만 필터"),
        ("Bernoulli 분포", "베르누이 분포"), ("Gram-Schmidt 과정", "그람 슈미트 과정"),
        ("Cauchy-Schwarz 부등식", "코시 슈바르츠 부등식"), ("Hamming 거리", "해밍 거리"),
        ("Schrödinger 방정식", "슈뢰딩거 방정식"), ("Monte Carlo 방법", "몬테카를로 방법"),
    ),
)
CONCEPTS = Pool(
    train=("행렬", "벡터 공간", "고유값", "미분 방정식", "정적분", "극한", "확률 분포", "정규 분포", "기댓값",
           "표준 편차", "회로", "저항", "전압", "주파수 응답", "알고리즘", "시간 복잡도", "운동량", "가속도",
           "선형 변환", "편미분"),
    test=("고유 벡터", "이항 분포", "공분산", "임피던스", "위상차", "자료 구조", "재귀 함수", "각운동량",
          "선형 독립", "정사영", "조건부 확률", "수렴 반경"),
)
BIG_O = Pool(
    train=(("O(n^2)", "오 엔 제곱"), ("O(n)", "오 엔"), ("O(log n)", "오 로그 엔"), ("O(1)", "오 일")),
    test=(("O(n log n)", "오 엔 로그 엔"), ("O(2^n)", "오 이의 엔 승"), ("O(n^3)", "오 엔 세제곱")),
)
TRIG = Pool(train=(("sin", "사인"), ("cos", "코사인")), test=(("tan", "탄젠트"),))

# ---- units: family -> Pool of (written suffix, spoken pattern with # for the number) -------------
UNITS = {
    "mass": Pool(shared=(("kg", "# 킬로그램"), ("g", "# 그램")), train=(("mg", "# 밀리그램"),), test=(("t", "# 톤"),)),
    "length": Pool(shared=(("m", "# 미터"), ("cm", "# 센티미터"), ("mm", "# 밀리미터"), ("km", "# 킬로미터")),
                   test=(("μm", "# 마이크로미터"), ("nm", "# 나노미터"))),
    "time": Pool(shared=(("s", "# 초"), ("ms", "# 밀리초")), test=(("μs", "# 마이크로초"), ("ns", "# 나노초"))),
    "freq": Pool(shared=(("Hz", "# 헤르츠"), ("kHz", "# 킬로헤르츠"), ("MHz", "# 메가헤르츠"), ("GHz", "# 기가헤르츠"))),
    "voltage": Pool(shared=(("V", "# 볼트"), ("mV", "# 밀리볼트")), test=(("kV", "# 킬로볼트"),)),
    "current": Pool(shared=(("A", "# 암페어"), ("mA", "# 밀리암페어")), test=(("μA", "# 마이크로암페어"),)),
    "power": Pool(shared=(("W", "# 와트"), ("kW", "# 킬로와트")), train=(("mW", "# 밀리와트"),), test=(("MW", "# 메가와트"),)),
    "resistance": Pool(shared=(("Ω", "# 옴"), ("kΩ", "# 킬로옴")), test=(("MΩ", "# 메가옴"),)),
    "energy": Pool(train=(("J", "# 줄"), ("kJ", "# 킬로줄")), test=(("eV", "# 전자볼트"), ("kWh", "# 킬로와트시"))),
    "force": Pool(train=(("N", "# 뉴턴"),), test=(("kN", "# 킬로뉴턴"),)),
    "pressure": Pool(test=(("Pa", "# 파스칼"), ("kPa", "# 킬로파스칼"), ("atm", "# 기압"))),
    "temp": Pool(shared=(("°C", "# 도"),), test=(("K", "# 켈빈"),)),
    "accel": Pool(shared=(("m/s^2", "# 미터 퍼 초 제곱"),)),
    "speed": Pool(shared=(("m/s", "# 미터 퍼 초"), ("km/h", "시속 # 킬로미터"))),
    "data": Pool(shared=(("MB", "# 메가바이트"), ("GB", "# 기가바이트")), train=(("KB", "# 킬로바이트"),),
                 test=(("TB", "# 테라바이트"),)),
    "sound": Pool(test=(("dB", "# 데시벨"),)),
}

# ---- everyday vocabulary --------------------------------------------------------------------------
PEOPLE = Pool(train=("친구", "동생", "엄마", "아빠", "선배", "동기", "언니", "형"),
              test=("누나", "삼촌", "이모", "할머니", "후배", "사촌"))
FOODS = Pool(train=("김치찌개", "떡볶이", "비빔밥", "짜장면", "치킨", "삼겹살", "라면", "김밥"),
             test=("냉면", "된장찌개", "순댓국", "파스타", "초밥", "칼국수"))
PLACES = Pool(train=("학교", "도서관", "카페", "편의점", "지하철역", "병원", "공원", "영화관"),
              test=("시장", "은행", "우체국", "백화점", "놀이터", "미용실"))
ACTIVITIES = Pool(train=("운동", "청소", "빨래", "산책", "요리", "게임"), test=("등산", "낚시", "수영", "독서", "설거지"))
ITEMS = Pool(train=("가방", "우산", "신발", "모자", "컵"), test=("지갑", "안경", "시계", "장갑"))
ANIMALS = Pool(train=("강아지", "고양이"), test=("토끼", "햄스터"))
WEEKDAYS = Pool(shared=("월요일", "화요일", "수요일", "목요일", "금요일", "토요일", "일요일"))

POOLS = {
    "term": TERMS, "method": METHODS, "concept": CONCEPTS, "bigo": BIG_O,
    "greek": GREEK_LETTERS, "person": PEOPLE, "food": FOODS, "place": PLACES, "activity": ACTIVITIES,
    "item": ITEMS, "animal": ANIMALS, "weekday": WEEKDAYS,
}

# ---- templates ------------------------------------------------------------------------------------
TRAIN_LECTURE = (
    "자 {func} [=|이퀄] {poly:의} 도함수를 구해 봅시다",
    "{poly:을} {var:에} 대해 미분하면 {dpoly:이} 됩니다",
    "그러니까 {funcd} [=|이퀄] {dpoly:이} 되는 거죠",
    "미분 방정식 {dydx} [=|이퀄] {mono:을} 풀어 봅시다",
    "방정식 {eq:의} 해를 구해 보세요",
    "{interval} {poly:을} 적분해 보겠습니다",
    "{integral:을} 계산하면 결과가 어떻게 될까요",
    "{var:이} {small:으로} 갈 때 {func:의} 극한값을 생각해 봅시다",
    "{method:을} 쓰면 {func:을} 다항식으로 근사할 수 있어요",
    "{trigf:의} 주기는 [2π|이 파이]입니다",
    "{exp:을} 미분하면 자기 자신이 나옵니다",
    "{dim} 행렬 {mat:의} 고유값을 구해 봅시다",
    "고유값 {greek:이} {int:이면} 행렬식은 [0|영]이 아닙니다",
    "{matT} {mat:은} 항상 대칭 행렬이에요",
    "역행렬 {matinv:이} 존재하려면 행렬식이 [0|영]이 아니어야 합니다",
    "벡터 {vec:과} {vec:의} 내적은 {int}입니다",
    "{concept:에} 대해서 {cnt:가지} 성질을 정리해 볼게요",
    "확률 변수 {rv:이} 평균 [μ|뮤] 분산 [σ^2|시그마 제곱]인 정규 분포를 따른다고 합시다",
    "이 사건이 일어날 확률은 {frac}입니다",
    "합격할 확률이 {pct:이라고} 가정해 봅시다",
    "표본 {cnt:개}를 뽑았더니 평균이 {dec:이었어요}",
    "주사위를 {cnt:번} 던져서 {die:이} 나올 확률을 구해 보세요",
    "질량이 {q.mass}인 물체에 {q.force}의 힘을 가하면 가속도는 얼마일까요",
    "가속도가 {q.accel:이면} 속도는 시간에 비례해서 늘어납니다",
    "물체가 {q.speed:으로} 움직이고 있다고 합시다",
    "저항이 {q.resistance:이고} 전압이 {q.voltage:이면} 전류는 얼마일까요",
    "이 회로에 흐르는 전류는 {q.current}입니다",
    "샘플링 주파수가 {q.freq:이면} 그 절반까지 복원할 수 있습니다",
    "소비 전력이 {q.power:을} 넘으면 안 됩니다",
    "{acr:은} 행렬 곱셈을 병렬로 처리해서 빠릅니다",
    "{term:을} 조금 더 자세히 살펴볼게요",
    "{term:이} 너무 크면 학습이 불안정해집니다",
    "[learning rate|러닝 레이트]를 {lr:으로} 설정하고 {cnt:번} 반복했습니다",
    "[batch size|배치 사이즈]는 {pow2:으로} 두겠습니다",
    "파라미터 수가 약 {bign:개}입니다",
    "메모리가 {q.data} 정도 필요합니다",
    "정확도가 {pct:에서} {pcthi:으로} 올랐어요",
    "이 알고리즘의 시간 복잡도는 {bigo}입니다",
    "오늘은 {sn:장} 내용을 복습하겠습니다",
    "과제는 {date}까지 제출해 주세요",
    "{time}까지 쉬었다가 다시 시작할게요",
    "{cnt:명}씩 조를 짜서 실험을 진행합니다",
    "교재 {sn:페이지}를 펴 보세요",
    "온도를 {q.temp:에서} {q.temp:으로} 바꿔서 다시 측정했습니다",
    "{greek:을} {dec:으로} 두면 수렴이 빨라집니다",
    "{sqrt:이} 무리수라는 걸 증명해 봅시다",
    "{func} [=|이퀄] {trigf:의} 그래프를 그려 봅시다",
    "{concept:은} 다음 시간에 자세히 다룰게요",
    "{acr:으로} 계산하면 {q.time} 정도 걸립니다",
    "{year}에 나온 논문에서 {term:을} 처음 제안했어요",
    "데이터 {bign:개}를 학습에 사용했습니다",
    "{func:을} {var:에} 대해 두 번 미분하면 {int:이} 나옵니다",
    "{neg}부터 {int}까지의 정수를 모두 더해 보세요",
    "이 신호의 주파수는 {q.freq:이고} 진폭은 {q.voltage}입니다",
    "{mono:의} 부정적분은 얼마일까요",
    "{dim} 행렬의 [rank|랭크]는 {rank}입니다",
)
TEST_LECTURE = (
    "여기서 {func:은} {poly:이고} 이걸 한 번 미분하면 {dpoly:이} 나오죠",
    "{eq:을} 만족하는 {var:의} 값은 몇 개일까요",
    "{method:에} 따르면 {func:의} 근사식을 쉽게 얻을 수 있습니다",
    "감쇠 계수 {greek:을} {dec:으로} 바꿔서 다시 시뮬레이션해 봤어요",
    "{term:은} 보통 {acr:에서} 처리합니다",
    "압력이 {q.pressure:으로} 떨어지면 부피는 어떻게 변할까요",
    "{dim} 행렬 {mat:의} 행렬식을 먼저 계산해 볼까요",
    "{matinv:을} {mat:에} 곱하면 단위 행렬이 되죠",
    "오차가 {pct} 이하가 되도록 {acr:을} 설계해야 합니다",
    "{concept:과} {concept:의} 차이를 정리해 두세요",
    "입력 전압 {q.voltage:에} 대해서 출력이 {q.voltage:으로} 측정됐습니다",
    "{integral:을} {interval} 계산하면 넓이를 구할 수 있어요",
    "{cnt:명}이 한 팀이 되어서 {term:을} 구현해 보세요",
    "신호를 {q.freq:으로} 샘플링했더니 잡음이 {q.sound}만큼 줄었어요",
    "확률 변수 {rv:의} 기댓값이 {dec:이면} 분산은 어떻게 구할까요",
    "다음 주 {weekday}에는 {sn:장}부터 시험 범위입니다",
    "{exp:과} {trigf:을} 곱한 함수를 적분해 봅시다",
    "에너지가 {q.energy:이고} 시간이 {q.time:이면} 평균 전력을 구할 수 있죠",
    "{sqrt:을} 소수점 아래 둘째 자리까지 구하면 얼마일까요",
    "{bign:개}의 샘플 중에서 {frac:이} 불량이었습니다",
    "{bigo:으로} 줄일 수 있는 방법이 있을까요",
    "{funcd:이} {small:이} 되는 지점을 찾아보세요",
    "질량 {q.mass:을} 들어 올리는 데 {q.energy:이} 필요합니다",
    "이 칩은 {q.data}의 데이터를 {q.time} 안에 처리합니다",
)
TRAIN_EVERYDAY = (
    "오늘 저녁에 {person:이랑} {food} 먹으러 갈래요",
    "{time}에 {place} 앞에서 만나요",
    "사과 {cnt:개}하고 우유 {cnt:병} 주세요",
    "이 {item:은} {money:이에요}",
    "우리 집 {animal:은} 올해 {cnt:살}이에요",
    "{date}에 {place:에} 가기로 했어요",
    "버스가 {sn:분} 뒤에 도착한대요",
    "지하철 {sn:호선}으로 갈아타야 해요",
    "내일은 기온이 {sn:도}까지 올라간대요",
    "주말에 {person:이랑} {activity:을} 하기로 했어요",
    "제 전화번호는 {phone:이에요}",
    "어제 {cnt:시간} 동안 잠을 못 잤어요",
    "{person:이} 커피 {cnt:잔}을 사 줬어요",
    "오늘은 {weekday:이라서} 사람이 많네요",
    "{time}까지 {place:으로} 와 주세요",
    "이번 달 용돈이 {money} 남았어요",
    "엘리베이터 타고 {sn:층}으로 올라오세요",
    "동생은 {year}에 태어났어요",
    "비가 와서 {item:을} 챙겼어요",
    "배가 너무 고파서 {food:을} 두 그릇이나 먹었어요",
)
TEST_EVERYDAY = (
    "퇴근하고 {person:이랑} {food:을} 먹었는데 정말 맛있었어요",
    "{date} {time}에 {place:에서} 보자",
    "{animal:이} {cnt:마리} 있는데 너무 귀여워요",
    "택시비가 {money} 나왔어요",
    "{place:에} 가려면 {sn:번} 버스를 타세요",
    "{activity:은} 일주일에 {cnt:번}씩 하고 있어요",
    "{item:을} 어디에 뒀는지 기억이 안 나요",
    "주문하신 {food} {cnt:그릇} 나왔습니다",
    "할인해서 {money:에} 샀어요",
    "회의는 {weekday} {time:으로} 미뤄졌어요",
    "{person:은} 올해 {cnt:살}이 됐어요",
    "바람이 너무 세서 창문을 {cnt:번}이나 닫았어요",
    "{person:한테} 선물로 {item:을} 받았어요",
    "{place:에서} {cnt:시간}이나 기다렸어요",
)
